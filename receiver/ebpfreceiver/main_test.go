package ebpfreceiver

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/yairfalse/tapio/internal/kerneltest"
)

func TestMain(m *testing.M) {
	kerneltest.HogMemoryIfAsked()   // the OOM test runs this binary as its victim
	kerneltest.ConnectLoopIfAsked() // the overhead benchmarks run it as their workloads
	kerneltest.ExecLoopIfAsked()
	serveIfAsked() // the workload tests run it as their servers
	goleak.VerifyTestMain(m)
}
