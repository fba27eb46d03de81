package kernel

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

func TestLoadErrorsSayWhatToDo(t *testing.T) {
	var log []string
	for i := 1; i <= 40; i++ {
		log = append(log, fmt.Sprintf("%d: (b7) r1 = 0", i))
	}
	log = append(log, "R1 invalid mem access 'scalar'")
	err := loadError(fmt.Errorf("load program: %w", &ebpf.VerifierError{Cause: syscall.EACCES, Log: log}))
	msg := err.Error()
	if !strings.Contains(msg, "the kernel verifier rejected a Tapio program") || !strings.Contains(msg, "R1 invalid mem access 'scalar'") {
		t.Errorf("verifier error lacks the rejection: %s", msg)
	}
	if strings.Contains(msg, "\n1: (b7)") || strings.Count(msg, "\n") > verifierTailLines+1 {
		t.Errorf("verifier error should carry only the last %d lines:\n%s", verifierTailLines, msg)
	}

	err = loadError(fmt.Errorf("map create: %w", os.ErrPermission))
	if !strings.Contains(err.Error(), "CAP_BPF and CAP_PERFMON") || !errors.Is(err, os.ErrPermission) {
		t.Errorf("permission error: %v", err)
	}
}
