package ebpfreceiver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// workloadCgroups decides which cgroups name a workload: a systemd service unit, a container
// runtime's cgroup that carries no container id, or one matching a configured pattern. Never the
// collector's own cgroup nor one of its ancestors: on a host where every process sits in one
// cgroup (a CI runner's, a login session's) that cgroup would make the whole host one workload.
type workloadCgroups struct {
	patterns []*regexp.Regexp
	// own holds the collector's cgroups and all their ancestors, full paths ("/", "/a", "/a/b").
	own map[string]bool
}

func newWorkloadCgroups(patterns []string, own map[string]bool) (*workloadCgroups, error) {
	w := &workloadCgroups{own: own}
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, err
		}
		w.patterns = append(w.patterns, re)
	}
	return w, nil
}

// ownCgroups reads a process's cgroups (a /proc/<pid>/cgroup file) and returns their paths and
// their ancestors', over every hierarchy.
func ownCgroups(r io.Reader) (map[string]bool, error) {
	own := map[string]bool{"/": true}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// hierarchy-id:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		for path := parts[2]; path != "/" && path != ""; path = parentPath(path) {
			own[path] = true
		}
	}
	return own, sc.Err()
}

func parentPath(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "/"
	}
	return path[:i]
}

// workloadOf returns the deepest component of a cgroup path (components leaf first, as the
// kernel captured them) that names a workload, or "" when none does. truncated says the captured
// components stop short of the root.
func (w *workloadCgroups) workloadOf(components [][]byte, truncated bool) string {
	for i, c := range components {
		if len(c) == 0 || (len(c) == 1 && c[0] == '/') || !w.namesWorkload(c) {
			continue
		}
		if w.isOwn(components[i:], truncated) {
			// Its ancestors are the collector's ancestors too: nothing above names a workload.
			return ""
		}
		return string(c)
	}
	return ""
}

func (w *workloadCgroups) namesWorkload(c []byte) bool {
	switch {
	case bytes.HasSuffix(c, []byte(".service")):
		// user@<uid>.service is a user's systemd manager: their whole session, not a service.
		return !bytes.HasPrefix(c, []byte("user@"))
	case bytes.HasPrefix(c, []byte("lxc.payload.")):
		return true // an LXC container
	case bytes.HasPrefix(c, []byte("machine-")) && bytes.HasSuffix(c, []byte(".scope")):
		return true // a systemd-nspawn or libvirt machine
	}
	for _, re := range w.patterns {
		if re.Match(c) {
			return true
		}
	}
	return false
}

// isOwn reports whether the cgroup whose path ends with components (leaf first) is the
// collector's own or an ancestor of it. A truncated path is compared as a suffix.
func (w *workloadCgroups) isOwn(components [][]byte, truncated bool) bool {
	path := cgroupPath(components, false)
	if !truncated {
		return w.own[path]
	}
	for p := range w.own {
		if strings.HasSuffix(p, path) {
			return true
		}
	}
	return false
}

// validateCgroupPattern checks one workload.cgroup_patterns entry.
func validateCgroupPattern(p string) error {
	if p == "" {
		return fmt.Errorf("an empty pattern")
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return err
	}
	if re.MatchString("") {
		return fmt.Errorf("%q matches every cgroup name (it matches the empty string); anchor it, e.g. ^myapp-", p)
	}
	return nil
}

// selfCgroups reads the collector's own cgroups.
func selfCgroups() (map[string]bool, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ownCgroups(f)
}
