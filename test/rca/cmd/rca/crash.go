package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

// crashCommand makes this binary a short-lived tool that really crashes: the busy-host noise
// runs it, and Tapio must not page for it.
const crashCommand = "crash"

// crash dereferences a nil pointer; with the traceback level "crash" the Go runtime then ends
// the process with SIGABRT, as a C tool's abort() would.
func crash() {
	debug.SetTraceback("crash")
	var counters map[string]*int
	fmt.Fprintln(os.Stderr, "rca crash: reading a counter that was never allocated")
	*counters["requests"]++
}
