// Package memcg creates memory cgroups with a limit, under the caller's own memory cgroup: the
// cgroup v1 memory controller or cgroup v2. The kernel OOM-kills a process in one that outgrows
// the limit — a real OOM kill on demand, for tests and the demo.
package memcg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Group is one memory cgroup.
type Group struct {
	Dir       string
	limitFile string
	usageFile string
}

// Create makes a child cgroup named prefix-<unique> limited to limitBytes.
func Create(prefix string, limitBytes int64) (*Group, error) {
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	var tried []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		g := &Group{}
		var base string
		switch {
		case strings.Contains(","+parts[1]+",", ",memory,"):
			base, g.limitFile, g.usageFile = filepath.Join("/sys/fs/cgroup/memory", parts[2]), "memory.limit_in_bytes", "memory.usage_in_bytes"
		case parts[0] == "0" && parts[1] == "":
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
				continue // no unified hierarchy mounted
			}
			base, g.limitFile, g.usageFile = filepath.Join("/sys/fs/cgroup", parts[2]), "memory.max", "memory.current"
		default:
			continue
		}
		g.Dir = filepath.Join(base, name)
		if err := os.Mkdir(g.Dir, 0o755); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", g.Dir, err))
			continue
		}
		if err := os.WriteFile(filepath.Join(g.Dir, g.limitFile), []byte(strconv.FormatInt(limitBytes, 10)), 0o644); err != nil {
			_ = os.Remove(g.Dir)
			return nil, fmt.Errorf("setting the memory limit of %s: %w", g.Dir, err)
		}
		return g, nil
	}
	if len(tried) == 0 {
		return nil, errors.New("no memory cgroup for this process (needs the cgroup v1 memory controller or cgroup v2)")
	}
	return nil, fmt.Errorf("cannot create a memory cgroup (run as root, or delegate the memory controller): %s", strings.Join(tried, "; "))
}

// Procs is the file that moves a process into the group.
func (g *Group) Procs() string { return filepath.Join(g.Dir, "cgroup.procs") }

// UsageBytes is the group's current memory usage.
func (g *Group) UsageBytes() (int64, error) {
	raw, err := os.ReadFile(filepath.Join(g.Dir, g.usageFile))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
}

// Remove deletes the group; it must hold no process.
func (g *Group) Remove() error { return os.Remove(g.Dir) }

// Command returns the argv that runs program with args inside the group: a shell moves itself
// into the group, then becomes the program.
func (g *Group) Command(program string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", `echo $$ > "$0" && shift && exec "$@"`, g.Procs(), "--", program}, args...)
}
