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
