package ebpfreceiver

import "strconv"

var signalNames = [...]string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
	16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG",
	24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS"}

func signalName(n uint32) string {
	if int(n) < len(signalNames) && signalNames[n] != "" {
		return signalNames[n]
	}
	return "SIG" + strconv.FormatUint(uint64(n), 10)
}

// errnoNames are the socket errors a failed connect reports.
// connectAbandoned is the error.type of a connect the application closed in SYN_SENT after the
// kernel's abandon threshold, no answer having come: a timeout of the application's own.
const connectAbandoned = "connect_abandoned"

var errnoNames = map[int32]string{110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH", 101: "ENETUNREACH"}

func errnoName(n int32) string {
	if s, ok := errnoNames[n]; ok {
		return s
	}
	return "errno " + strconv.Itoa(int(n))
}
