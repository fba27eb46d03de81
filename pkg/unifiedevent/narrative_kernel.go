package unifiedevent

import (
	"strconv"
	"strings"
)

// ProcessLabel names a process the way narratives do: "ledger-db (pid 4242)".
func ProcessLabel(name string, pid uint32) string {
	if name == "" && pid == 0 {
		return "an unknown process"
	}
	if name == "" {
		name = "process"
	}
	return name + " (pid " + strconv.FormatUint(uint64(pid), 10) + ")"
}

// OOMKillNarrative: "Kernel OOM killer killed ledger-db (pid 4242): memory cgroup limit 64 MiB reached".
func OOMKillNarrative(victim string, pid uint32, limitBytes, usageBytes uint64) string {
	var b strings.Builder
	b.WriteString("Kernel OOM killer killed ")
	b.WriteString(ProcessLabel(victim, pid))
	if limitBytes > 0 && limitBytes < 1<<60 {
		b.WriteString(": memory cgroup limit ")
		b.WriteString(FormatBytes(limitBytes))
		b.WriteString(" reached")
		if usageBytes > 0 {
			b.WriteString(" (usage ")
			b.WriteString(FormatBytes(usageBytes))
			b.WriteByte(')')
		}
	} else {
		b.WriteString(": the host ran out of memory")
	}
	return b.String()
}

// ExitNarrative: "ledger-db (pid 4242) exited with code 3" or "... was killed by SIGSEGV (core dumped)".
func ExitNarrative(name string, pid uint32, exitCode int, signal string, coreDumped bool) string {
	label := ProcessLabel(name, pid)
	if signal != "" {
		s := label + " was killed by " + signal
		if coreDumped {
			s += " (core dumped)"
		}
		return s
	}
	return label + " exited with code " + strconv.Itoa(exitCode)
}

// SignalNarrative: "SIGKILL sent to ledger-db (pid 4242) by the kernel".
func SignalNarrative(signal, target string, targetPID uint32, sender string, senderPID uint32) string {
	by := "the kernel"
	if senderPID != 0 {
		by = ProcessLabel(sender, senderPID)
	}
	return signal + " sent to " + ProcessLabel(target, targetPID) + " by " + by
}

// ConnectionNarrative describes a failed or reset connection from the local process's side.
func ConnectionNarrative(name Name, process string, pid uint32, local, remote, detail string) string {
	who := "A connection"
	if process != "" || pid != 0 {
		who = ProcessLabel(process, pid) + "'s connection"
	}
	switch name {
	case ConnectionRefused:
		return who + " to " + remote + " was refused: nothing listens there"
	case ConnectionTimeout:
		return who + " to " + remote + " timed out before it was established (" + detail + ")"
	case ConnectionReset:
		return who + " " + local + " ↔ " + remote + " was reset (" + detail + ")"
	case TCPRetransmit:
		return who + " " + local + " → " + remote + " retransmitted " + detail
	}
	return who + " " + local + " → " + remote
}

// ListenNarrative: "ledger-db (pid 4242) listens on 0.0.0.0:5432".
func ListenNarrative(process string, pid uint32, address string) string {
	return ProcessLabel(process, pid) + " listens on " + address
}

// ExecNarrative: "bash (pid 17) executed /usr/bin/curl".
func ExecNarrative(process string, pid uint32, path string) string {
	return ProcessLabel(process, pid) + " executed " + path
}

// IONarrative describes a failed or slow block request: "I/O error on loop0: write of 1 MiB at
// sector 2048 failed (BLK_STS_NOSPC), issued by dd (pid 77)" or "Slow I/O on vda: read of 4 KiB
// at sector 8 took 812ms".
func IONarrative(name Name, device, op string, bytes uint64, sector uint64, status string, took string, issuer string, pid uint32) string {
	var b strings.Builder
	if name == IOError {
		b.WriteString("I/O error on ")
	} else {
		b.WriteString("Slow I/O on ")
	}
	b.WriteString(device)
	b.WriteString(": ")
	b.WriteString(op)
	b.WriteString(" of ")
	b.WriteString(FormatBytes(bytes))
	b.WriteString(" at sector ")
	b.WriteString(strconv.FormatUint(sector, 10))
	if name == IOError {
		b.WriteString(" failed (")
		b.WriteString(status)
		b.WriteByte(')')
	} else {
		b.WriteString(" took ")
		b.WriteString(took)
	}
	if issuer != "" || pid != 0 {
		b.WriteString(", issued by ")
		b.WriteString(ProcessLabel(issuer, pid))
	}
	return b.String()
}
