package ebpfreceiver

import "testing"

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
