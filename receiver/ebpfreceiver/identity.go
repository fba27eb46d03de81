package ebpfreceiver

import (
	"bytes"
	"strings"
)

// containerIdentity reads the container id and pod uid out of cgroup path components (leaf
// first), for the layouts of containerd, CRI-O, Docker and podman under the systemd and cgroupfs
// drivers, on cgroup v1 and v2:
//
//	.../kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
//	.../kubepods/burstable/pod<uid>/<id>
//	.../docker-<id>.scope, .../docker/<id>, .../crio-<id>.scope, .../libpod-<id>.scope
func containerIdentity(components [][]byte) (containerID, podUID string) {
	for _, c := range components {
		if len(c) == 0 {
			continue
		}
		if containerID == "" && podUID == "" {
			if id, ok := containerIDOf(c); ok {
				containerID = id
				continue
			}
		}
		if podUID == "" {
			if uid, ok := podUIDOf(c); ok {
				podUID = uid
			}
		}
	}
	return containerID, podUID
}

var runtimePrefixes = [][]byte{[]byte("cri-containerd-"), []byte("crio-"), []byte("docker-"), []byte("libpod-"), []byte("containerd-")}

func containerIDOf(c []byte) (string, bool) {
	c = bytes.TrimSuffix(c, []byte(".scope"))
	if bytes.HasPrefix(c, []byte("crio-conmon-")) || bytes.HasPrefix(c, []byte("libpod-conmon-")) {
		return "", false // the runtime's monitor process, not the container
	}
	for _, p := range runtimePrefixes {
		if bytes.HasPrefix(c, p) {
			c = c[len(p):]
			break
		}
	}
	if len(c) == 64 && isHex(c) {
		return string(c), true
	}
	return "", false
}

func podUIDOf(c []byte) (string, bool) {
	s := string(bytes.TrimSuffix(c, []byte(".slice")))
	i := strings.LastIndex(s, "pod")
	if i < 0 {
		return "", false
	}
	uid := strings.ReplaceAll(s[i+len("pod"):], "_", "-")
	if len(uid) != 36 || uid[8] != '-' || uid[13] != '-' || uid[18] != '-' || uid[23] != '-' {
		return "", false
	}
	if !isHex([]byte(strings.ReplaceAll(uid, "-", ""))) {
		return "", false
	}
	return uid, true
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// cgroupPath joins the captured components root-most first: "/a/b/leaf", prefixed with "…" when
// the path was deeper than what the kernel captured.
func cgroupPath(components [][]byte, truncated bool) string {
	var b strings.Builder
	if truncated {
		b.WriteString("…")
	}
	for i := len(components) - 1; i >= 0; i-- {
		if len(components[i]) == 0 || (len(components[i]) == 1 && components[i][0] == '/') {
			continue
		}
		b.WriteByte('/')
		b.Write(components[i])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}
