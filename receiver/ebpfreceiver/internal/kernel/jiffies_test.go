package kernel

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The abandon threshold handed to the programs is the least number of kernel ticks that lasts
// at least as long as the threshold, whatever the kernel's HZ.
func TestJiffiesAtLeastRoundsUpToWholeTicks(t *testing.T) {
	var res unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &res); err != nil {
		t.Fatal(err)
	}
	tick := time.Duration(res.Nano())
	// HZ is 100 to 1000 on every kernel Tapio supports.
	if tick < time.Millisecond || tick > 10*time.Millisecond {
		t.Fatalf("CLOCK_MONOTONIC_COARSE resolution %v is no jiffy", tick)
	}
	for _, d := range []time.Duration{ConnectAbandonAfter, tick, tick + 1, 3*tick - 1, time.Nanosecond} {
		n, err := jiffiesAtLeast(d)
		if err != nil {
			t.Fatal(err)
		}
		if time.Duration(n)*tick < d || time.Duration(n-1)*tick >= d {
			t.Errorf("jiffiesAtLeast(%v) = %d ticks of %v", d, n, tick)
		}
	}
}
