package ebpfreceiver

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// memoryHogEnv turns the test binary into a process that allocates until the kernel kills it:
// the OOM test runs it inside a memory cgroup with a small limit.
const memoryHogEnv = "TAPIO_TEST_MEMORY_HOG"

func TestMain(m *testing.M) {
	if os.Getenv(memoryHogEnv) == "1" {
		hogMemory()
	}
	goleak.VerifyTestMain(m)
}

func hogMemory() {
	var chunks [][]byte
	for i := 0; i < 4096; i++ {
		chunk := make([]byte, 1<<20)
		for j := 0; j < len(chunk); j += 4096 {
			chunk[j] = 1 // touch every page so it is really resident
		}
		chunks = append(chunks, chunk)
	}
	_ = chunks
	os.Exit(3) // not reached under the limit: the OOM killer ends the process first
}
