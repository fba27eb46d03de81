package ebpfreceiver

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// fullLoopDevice attaches a loop device backed by a sparse 16 MiB file on a 1 MiB tmpfs: writes
// past the first megabyte fail in the block layer for real (BLK_STS_NOSPC).
func fullLoopDevice(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"losetup", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			kerneltest.SkipOrFail(t, "%s is needed for the block I/O test", tool)
		}
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1M", "tapio-io-test", dir).CombinedOutput(); err != nil {
		kerneltest.SkipOrFail(t, "cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	backing := filepath.Join(dir, "backing")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 16<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
	return dev
}

func TestBlockIOErrorAndLatency(t *testing.T) {
	rr := startReceiver(t, func(c *Config) { c.IOLatency.Threshold = time.Nanosecond })
	dev := fullLoopDevice(t)

	f, err := os.OpenFile(dev, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := alignedBuffer(1 << 20)
	var writeErr error
	for i := 0; i < 4 && writeErr == nil; i++ {
		_, writeErr = f.Write(buf)
	}
	if !errors.Is(writeErr, syscall.ENOSPC) && !errors.Is(writeErr, syscall.EIO) {
		t.Fatalf("writing past the tmpfs's space: %v, want ENOSPC or EIO", writeErr)
	}
	disk := filepath.Base(dev)

	e := rr.waitFor(t, unifiedevent.IOError, 5*time.Second, func(e kernelEvent) bool { return e.str("tapio.storage.device") == disk })
	assertUnifiedEvent(t, e)
	if e.str("disk.io.direction") != "write" || e.str("error.type") != "BLK_STS_NOSPC" || e.int("tapio.storage.bytes") <= 0 {
		t.Errorf("io_error attributes: %v", e.attributes())
	}
	mustContain(t, "body", e.record.Body().Str(), "I/O error on "+disk+": write of")

	// With a 1 ns threshold every successful request on the device is an io_latency event.
	e = rr.waitFor(t, unifiedevent.IOLatency, 5*time.Second, func(e kernelEvent) bool { return e.str("tapio.storage.device") == disk })
	assertUnifiedEvent(t, e)
	if v, _ := e.record.Attributes().Get("tapio.storage.latency_ms"); v.Double() <= 0 {
		t.Errorf("latency %v", v.AsRaw())
	}
}

// alignedBuffer returns a buffer aligned for O_DIRECT.
func alignedBuffer(size int) []byte {
	const align = 4096
	raw := make([]byte, size+align)
	offset := 0
	if rem := int(uintptr(unsafe.Pointer(unsafe.SliceData(raw))) % align); rem != 0 {
		offset = align - rem
	}
	return raw[offset : offset+size]
}
