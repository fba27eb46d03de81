package unifiedevent

import (
	"strconv"
	"strings"
)

// ProcessLabel names a process the way narratives do: "ledger-db (pid 4242)".
func ProcessLabel(name string, pid uint32) string {
	var b strings.Builder
	writeProcessLabel(&b, name, pid)
	return b.String()
}

func writeProcessLabel(b *strings.Builder, name string, pid uint32) {
	if name == "" && pid == 0 {
		b.WriteString("an unknown process")
		return
	}
	if name == "" {
		name = "process"
	}
	b.WriteString(name)
	b.WriteString(" (pid ")
	var digits [10]byte
	b.Write(strconv.AppendUint(digits[:0], uint64(pid), 10))
	b.WriteByte(')')
}

// narrative builds one sentence in a single allocation of a generous size.
func narrative(size int) *strings.Builder {
	b := new(strings.Builder)
	b.Grow(size)
	return b
}

// OOMKillNarrative: "Kernel OOM killer killed ledger-db (pid 4242): memory cgroup limit 64 MiB reached".
func OOMKillNarrative(victim string, pid uint32, limitBytes, usageBytes uint64) string {
	b := narrative(96 + len(victim))
	b.WriteString("Kernel OOM killer killed ")
	writeProcessLabel(b, victim, pid)
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
	b := narrative(64 + len(name))
	writeProcessLabel(b, name, pid)
	if signal != "" {
		b.WriteString(" was killed by ")
		b.WriteString(signal)
		if coreDumped {
			b.WriteString(" (core dumped)")
		}
		return b.String()
	}
	b.WriteString(" exited with code ")
	var digits [20]byte
	b.Write(strconv.AppendInt(digits[:0], int64(exitCode), 10))
	return b.String()
}

// EndedBySignalNarrative describes the exit of a process that a signal from another process
// ended: "nginx (pid 42) exited with code 0 after SIGTERM from systemctl (pid 7)" when it
// handled the signal, "redis-server (pid 9) was killed by SIGKILL from kill (pid 77)" when the
// signal killed it.
func EndedBySignalNarrative(name string, pid uint32, exitCode int, signal string, killed, coreDumped bool, sender string, senderPID uint32) string {
	b := narrative(96 + len(name) + len(signal) + len(sender))
	writeProcessLabel(b, name, pid)
	if killed {
		b.WriteString(" was killed by ")
		b.WriteString(signal)
		if coreDumped {
			b.WriteString(" (core dumped)")
		}
	} else {
		b.WriteString(" exited with code ")
		var digits [20]byte
		b.Write(strconv.AppendInt(digits[:0], int64(exitCode), 10))
		b.WriteString(" after ")
		b.WriteString(signal)
	}
	b.WriteString(" from ")
	writeProcessLabel(b, sender, senderPID)
	return b.String()
}

// SignalNarrative: "SIGKILL sent to ledger-db (pid 4242) by the kernel".
func SignalNarrative(signal, target string, targetPID uint32, sender string, senderPID uint32) string {
	b := narrative(64 + len(signal) + len(target) + len(sender))
	b.WriteString(signal)
	b.WriteString(" sent to ")
	writeProcessLabel(b, target, targetPID)
	switch senderPID {
	case 0:
		b.WriteString(" by the kernel")
	case targetPID:
		// The OOM killer and fault handlers signal in the victim's own context.
		b.WriteString(" in its own context (by the kernel, or by itself)")
	default:
		b.WriteString(" by ")
		writeProcessLabel(b, sender, senderPID)
	}
	return b.String()
}

// ConnectionNarrative describes a failed or reset connection from the local process's side.
func ConnectionNarrative(name Name, process string, pid uint32, local, remote, detail string) string {
	b := narrative(96 + len(process) + len(local) + len(remote) + len(detail))
	if process != "" || pid != 0 {
		writeProcessLabel(b, process, pid)
		b.WriteString("'s connection")
	} else {
		b.WriteString("A connection")
	}
	switch name {
	case ConnectionRefused:
		b.WriteString(" to ")
		b.WriteString(remote)
		b.WriteString(" was refused: nothing listens there")
	case ConnectionTimeout:
		b.WriteString(" to ")
		b.WriteString(remote)
		b.WriteString(" timed out before it was established (")
		b.WriteString(detail)
		b.WriteByte(')')
	case ConnectionReset:
		b.WriteByte(' ')
		b.WriteString(local)
		b.WriteString(" ↔ ")
		b.WriteString(remote)
		b.WriteString(" was reset (")
		b.WriteString(detail)
		b.WriteByte(')')
	default:
		b.WriteByte(' ')
		b.WriteString(local)
		b.WriteString(" → ")
		b.WriteString(remote)
		if detail != "" {
			b.WriteString(" retransmitted ")
			b.WriteString(detail)
		}
	}
	return b.String()
}

// ListenNarrative: "ledger-db (pid 4242) listens on 0.0.0.0:5432".
func ListenNarrative(process string, pid uint32, address string) string {
	b := narrative(48 + len(process) + len(address))
	writeProcessLabel(b, process, pid)
	b.WriteString(" listens on ")
	b.WriteString(address)
	return b.String()
}

// ExistingListenNarrative: "postgres (pid 812) was listening on 127.0.0.1:5432 when the collector started".
func ExistingListenNarrative(process string, pid uint32, address string) string {
	b := narrative(80 + len(process) + len(address))
	writeProcessLabel(b, process, pid)
	b.WriteString(" was listening on ")
	b.WriteString(address)
	b.WriteString(" when the collector started")
	return b.String()
}

// ExecNarrative: "bash (pid 17) executed /usr/bin/curl".
func ExecNarrative(process string, pid uint32, path string) string {
	b := narrative(48 + len(process) + len(path))
	writeProcessLabel(b, process, pid)
	b.WriteString(" executed ")
	b.WriteString(path)
	return b.String()
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
