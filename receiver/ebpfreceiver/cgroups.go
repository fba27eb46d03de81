package ebpfreceiver

import (
	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

// cgroupCache turns cgroup ids into what the receiver writes — the path, the container id, the
// pod uid, the service the cgroup names — once per cgroup rather than per event. The names come
// from the kernel, which captured them when it first saw the cgroup (kernfs ids are not reused,
// so an entry never goes stale).
type cgroupCache struct {
	lookup    func(id uint64) (kernel.CgroupPath, bool)
	workloads *workloadCgroups
	host      string
	byID      map[uint64]*cgroupInfo
}

type cgroupInfo struct {
	path, containerID, podUID string
	// workload is the cgroup component that names the process's service ("nginx.service"), when
	// no container or pod does.
	workload string
	// entityID is the entity the cgroup alone decides (pod, container, service), else "".
	entityID string
}

var unknownCgroup = &cgroupInfo{}

func newCgroupCache(lookup func(uint64) (kernel.CgroupPath, bool), workloads *workloadCgroups, host string) *cgroupCache {
	return &cgroupCache{lookup: lookup, workloads: workloads, host: host, byID: map[uint64]*cgroupInfo{}}
}

func (c *cgroupCache) info(id uint64) *cgroupInfo {
	if id == 0 {
		return unknownCgroup
	}
	if info, ok := c.byID[id]; ok {
		return info
	}
	path, ok := c.lookup(id)
	if !ok {
		// Not captured, or evicted from the kernel's map before it was read: not cached, so a
		// later event can still resolve it.
		return unknownCgroup
	}
	if len(c.byID) >= internLimit {
		clear(c.byID)
	}
	comps := make([][]byte, 0, kernel.CgroupDepth)
	for i := range path {
		comps = append(comps, kernel.CString(path[i][:]))
	}
	// When the deepest captured level is not the root, the path goes on above what was captured.
	top := comps[len(comps)-1]
	truncated := len(top) > 0 && string(top) != "/"
	info := &cgroupInfo{path: cgroupPath(comps, truncated)}
	info.containerID, info.podUID = containerIdentity(comps)
	switch {
	case info.podUID != "":
		info.entityID = info.podUID
	case info.containerID != "":
		info.entityID = info.containerID
	default:
		if info.workload = c.workloads.workloadOf(comps, truncated); info.workload != "" {
			info.entityID = unifiedevent.HostScopedEntityID(c.host, info.workload)
		}
	}
	c.byID[id] = info
	return info
}
