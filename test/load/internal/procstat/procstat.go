// Package procstat reads what the kernel accounts to a process: CPU time and memory.
package procstat

import (
	"github.com/prometheus/procfs"
)

// CPUSeconds is the user + system time of every thread of pid so far.
func CPUSeconds(pid int) (float64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return st.CPUTime(), nil
}

// Memory is the resident set now and its high-water mark, in bytes.
func Memory(pid int) (rss, hwm uint64, err error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, 0, err
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, 0, err
	}
	return st.VmRSS, st.VmHWM, nil
}

// Machine is the whole machine's CPU time so far, busy and idle, in seconds (all CPUs).
type Machine struct{ Busy, Idle float64 }

// ReadMachine reads /proc/stat.
func ReadMachine() (Machine, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return Machine{}, err
	}
	st, err := fs.Stat()
	if err != nil {
		return Machine{}, err
	}
	t := st.CPUTotal
	idle := t.Idle + t.Iowait
	busy := t.User + t.Nice + t.System + t.IRQ + t.SoftIRQ + t.Steal
	return Machine{Busy: busy, Idle: idle}, nil
}
