package fault

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ThinDisk is an ext4 filesystem on a loop device whose backing file is sparse and lives on a
// small tmpfs: the filesystem believes it has BackingBytes, the tmpfs holds far less. Once the
// tmpfs is full, every write of the filesystem to a block it never wrote before fails in the
// block layer — a thin-provisioned volume that ran out of space, with real I/O errors.
type ThinDisk struct {
	// Device is the loop device's name, e.g. loop3.
	Device string
	// Mount is where the ext4 filesystem is mounted.
	Mount  string
	tmpfs  string
	logDir string
}

// NewThinDisk builds the stack (tmpfs, sparse backing file, loop device, ext4, mount) under dir
// and registers its removal in reverse order.
func NewThinDisk(c Cleaner, logDir, dir string, tmpfsBytes, backingBytes int64) (*ThinDisk, error) {
	d := &ThinDisk{tmpfs: filepath.Join(dir, "tmpfs"), Mount: filepath.Join(dir, "fs"), logDir: logDir}
	for _, p := range []string{d.tmpfs, d.Mount} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, err
		}
	}
	if err := run(logDir, "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", tmpfsBytes), "tapio-rca-thin", d.tmpfs); err != nil {
		return nil, err
	}
	c.Defer("tmpfs "+d.tmpfs, func() error { return unmountRetrying(d.tmpfs) })
	backing := filepath.Join(d.tmpfs, "backing")
	f, err := os.Create(backing)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(backingBytes); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	d.Device = filepath.Base(dev)
	c.Defer("loop device "+dev, func() error { return run(logDir, "losetup", "-d", dev) })
	// Lazy initialisation keeps the inode tables and the journal unwritten, hence unallocated on
	// the tmpfs, like the rest of the free space.
	if err := run(logDir, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", dev); err != nil {
		return nil, err
	}
	// noinit_itable: no background zeroing of the inode tables (a write_zeroes the loop device
	// refuses, which would be an I/O error of the set-up, not of the fault).
	if err := run(logDir, "mount", "-t", "ext4", "-o", "noinit_itable", dev, d.Mount); err != nil {
		return nil, err
	}
	c.Defer("mount "+d.Mount, func() error { return unmountRetrying(d.Mount) })
	return d, nil
}

// Fill writes a file onto the tmpfs until it is full, and returns when.
func (d *ThinDisk) Fill() (time.Time, error) {
	f, err := os.Create(filepath.Join(d.tmpfs, "filler"))
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return time.Now(), nil
			}
			return time.Time{}, err
		}
	}
}

// unmountRetrying unmounts once the processes using the filesystem are gone.
func unmountRetrying(mount string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = syscall.Unmount(mount, 0); err == nil || errors.Is(err, syscall.EINVAL) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A filesystem that aborted after its I/O errors can stay busy; detach it.
	if lazy := syscall.Unmount(mount, syscall.MNT_DETACH); lazy == nil {
		return nil
	}
	return fmt.Errorf("unmounting %s: %w", mount, err)
}
