package ebpfreceiver

import (
	"strings"
	"testing"
)

func TestContainerIdentity(t *testing.T) {
	const id = "3f1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456"
	const uid = "6b1c2a4e-0d7a-4c1e-9a55-1f2e3d4c5b6a"
	tests := []struct {
		name       string
		path       []string // leaf first
		wantID     string
		wantPodUID string
	}{
		{"containerd systemd", []string{"cri-containerd-" + id + ".scope", "kubepods-burstable-pod6b1c2a4e_0d7a_4c1e_9a55_1f2e3d4c5b6a.slice", "kubepods-burstable.slice", "kubepods.slice"}, id, uid},
		{"cgroupfs", []string{id, "pod" + uid, "burstable", "kubepods"}, id, uid},
		{"crio", []string{"crio-" + id + ".scope", "kubepods-besteffort-pod6b1c2a4e_0d7a_4c1e_9a55_1f2e3d4c5b6a.slice"}, id, uid},
		{"crio conmon is not the container", []string{"crio-conmon-" + id + ".scope", "kubepods-pod6b1c2a4e_0d7a_4c1e_9a55_1f2e3d4c5b6a.slice"}, "", uid},
		{"docker systemd", []string{"docker-" + id + ".scope", "system.slice"}, id, ""},
		{"docker cgroupfs", []string{id, "docker"}, id, ""},
		{"plain host process", []string{"8b57ff0d478842c82462ad80e22e8b5d", "process_api"}, "", ""},
		{"a pod-level process", []string{"kubepods-burstable-pod6b1c2a4e_0d7a_4c1e_9a55_1f2e3d4c5b6a.slice", "kubepods-burstable.slice"}, "", uid},
		{"not a uid", []string{"podcast.slice"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var comps [][]byte
			for _, c := range tt.path {
				comps = append(comps, []byte(c))
			}
			gotID, gotUID := containerIdentity(comps)
			if gotID != tt.wantID || gotUID != tt.wantPodUID {
				t.Errorf("containerIdentity = %q, %q; want %q, %q", gotID, gotUID, tt.wantID, tt.wantPodUID)
			}
		})
	}
	if got := cgroupPath([][]byte{[]byte("leaf"), []byte("mid"), []byte("/")}, false); got != "/mid/leaf" {
		t.Errorf("cgroupPath = %q", got)
	}
}

func TestWorkloadCgroupRule(t *testing.T) {
	own, err := ownCgroups(strings.NewReader("4:memory:/process_api/ba05\n0::/\n9:name=systemd:/system.slice/otelcol.service\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/process_api", "/process_api/ba05", "/system.slice", "/system.slice/otelcol.service"} {
		if !own[p] {
			t.Errorf("own cgroups lack %s: %v", p, own)
		}
	}
	rule, err := newWorkloadCgroups([]string{"^myapp-[a-z]+$", "^ba05$"}, own)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		path      []string // leaf first, as captured
		truncated bool
		want      string
	}{
		{"a systemd service", []string{"postgresql@15-main.service", "system.slice", "/"}, false, "postgresql@15-main.service"},
		{"the deepest service of a nesting", []string{"payload", "inner.service", "outer.service", "system.slice", "/"}, false, "inner.service"},
		{"a user's systemd manager is not a service", []string{"init.scope", "user@1000.service", "user-1000.slice", "user.slice", "/"}, false, ""},
		{"a unit inside the user's manager is", []string{"app-web.service", "app.slice", "user@1000.service", "user-1000.slice", "user.slice", "/"}, false, "app-web.service"},
		{"an LXC container", []string{"lxc.payload.web1", "/"}, false, "lxc.payload.web1"},
		{"an nspawn machine", []string{"machine-db.scope", "machine.slice", "/"}, false, "machine-db.scope"},
		{"a configured pattern", []string{"myapp-checkout", "apps", "/"}, false, "myapp-checkout"},
		{"a session scope is not a workload", []string{"session-3.scope", "user-1000.slice", "user.slice", "/"}, false, ""},
		{"the collector's own cgroup, though a pattern names it", []string{"ba05", "process_api", "/"}, false, ""},
		{"the collector's own service", []string{"otelcol.service", "system.slice", "/"}, false, ""},
		{"a child of the collector's cgroup named by a pattern", []string{"ba05", "ba05", "process_api", "/"}, false, "ba05"},
		{"a service below the collector's cgroup", []string{"test.service", "tapio-1", "ba05", "process_api", "/"}, false, "test.service"},
		{"a truncated path ending like the collector's", []string{"otelcol.service", "system.slice"}, true, ""},
		{"a truncated path of another service", []string{"nginx.service", "system.slice"}, true, "nginx.service"},
		{"plain host process", []string{"8b57ff0d", "process_api", "/"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var comps [][]byte
			for _, c := range tt.path {
				comps = append(comps, []byte(c))
			}
			if got := rule.workloadOf(comps, tt.truncated); got != tt.want {
				t.Errorf("workloadOf(%v) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
	for _, p := range []string{"", ".*", "x|", "(unclosed"} {
		if validateCgroupPattern(p) == nil {
			t.Errorf("pattern %q should be refused", p)
		}
	}
	if err := validateCgroupPattern("^myapp-"); err != nil {
		t.Error(err)
	}
}
