package kernel

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestEventLayoutMatchesObject reads the layout of the C structs from the compiled object's BTF
// and checks every offset the Go decoder uses.
func TestEventLayoutMatchesObject(t *testing.T) {
	spec, err := loadTapio()
	if err != nil {
		t.Fatal(err)
	}
	structOf := func(name string) *btf.Struct {
		var s *btf.Struct
		if err := spec.Types.TypeByName(name, &s); err != nil {
			t.Fatalf("struct %s not in the object's BTF: %v", name, err)
		}
		return s
	}
	check := func(s *btf.Struct, member string, want int) {
		t.Helper()
		for _, m := range s.Members {
			if m.Name == member {
				if got := int(m.Offset.Bytes()); got != want {
					t.Errorf("%s.%s at offset %d in C, %d in Go", s.Name, member, got, want)
				}
				return
			}
		}
		t.Errorf("%s has no member %s", s.Name, member)
	}
	event := structOf("event")
	if int(event.Size) != EventSize {
		t.Errorf("struct event is %d bytes in C, %d in Go", event.Size, EventSize)
	}
	check(event, "ktime_ns", offKTime)
	check(event, "kind", offKind)
	check(event, "subject", offSubject)
	for _, m := range event.Members {
		if m.Name == "" { // the payload union
			if int(m.Offset.Bytes()) != offPayload {
				t.Errorf("payload union at %d in C, %d in Go", m.Offset.Bytes(), offPayload)
			}
			if u, ok := m.Type.(*btf.Union); !ok || int(u.Size) != payloadSize {
				t.Errorf("payload union size mismatch: %v", m.Type)
			}
		}
	}

	id := structOf("identity")
	if int(id.Size) != identitySize {
		t.Errorf("struct identity is %d bytes in C, %d in Go", id.Size, identitySize)
	}
	for member, off := range map[string]int{"pid": offIDPid, "tgid": offIDTgid, "ppid": offIDPpid, "uid": offIDUid,
		"cgroup_id": offIDCgroupID, "start_ns": offIDStartNs, "comm": offIDComm, "workload_tgid": offIDWorkloadTgid} {
		check(id, member, off)
	}
	if path := structOf("cgroup_path"); int(path.Size) != CgroupDepth*CgroupNameLen {
		t.Errorf("struct cgroup_path is %d bytes in C, %d in Go", path.Size, CgroupDepth*CgroupNameLen)
	}
	exit := structOf("exit_payload")
	for member, off := range map[string]int{"exit_code": offExitCode, "flags": offExitFlags, "signo": offExitSigNo,
		"signal_code": offExitSignalCode, "sender": offExitSender} {
		check(exit, member, off)
	}
	check(structOf("exec_payload"), "filename", offExecFilename)
	oom := structOf("oom_payload")
	for member, off := range map[string]int{"memcg_limit_bytes": offOOMLimit, "memcg_usage_bytes": offOOMUsage,
		"total_vm_pages": offOOMTotalVM, "anon_rss_pages": offOOMAnonRSS, "memcg_id": offOOMMemcgID} {
		check(oom, member, off)
	}
	sig := structOf("signal_payload")
	for member, off := range map[string]int{"signo": offSigNo, "code": offSigCode, "result": offSigResult, "sender": offSigSender} {
		check(sig, member, off)
	}
	io := structOf("io_payload")
	for member, off := range map[string]int{"sector": offIOSector, "latency_ns": offIOLatency, "bytes": offIOBytes, "op": offIOOp,
		"error": offIOError, "major": offIOMajor, "minor": offIOMinor, "disk": offIODisk} {
		check(io, member, off)
	}
	sock := structOf("sock_payload")
	for member, off := range map[string]int{"family": offSockFamily, "sport": offSockSport, "dport": offSockDport,
		"direction": offSockDirection, "err": offSockErr, "netns": offSockNetns, "saddr": offSockSaddr, "daddr": offSockDaddr,
		"role": offSockRole, "cpu": offSockCPU, "run": offSockRun, "ended_run_events": offSockRunEvents,
		"ended_run_last_ns": offSockRunLastNs} {
		check(sock, member, off)
	}
}
