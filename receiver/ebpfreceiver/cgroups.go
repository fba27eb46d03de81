package ebpfreceiver

import (
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

// cgroupCache turns cgroup ids into what the receiver writes — the path, the container id, the
// pod uid — once per cgroup rather than per event. The names come from the kernel, which captured
// them when it first saw the cgroup (kernfs ids are not reused, so an entry never goes stale).
type cgroupCache struct {
	lookup func(id uint64) (kernel.CgroupPath, bool)
	byID   map[uint64]*cgroupInfo
}

type cgroupInfo struct {
	path, containerID, podUID string
}

var unknownCgroup = &cgroupInfo{}

func newCgroupCache(lookup func(uint64) (kernel.CgroupPath, bool)) *cgroupCache {
	return &cgroupCache{lookup: lookup, byID: map[uint64]*cgroupInfo{}}
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
	info := &cgroupInfo{}
	info.containerID, info.podUID = containerIdentity(comps)
	// When the deepest captured level is not the root, the path goes on above what was captured.
	top := comps[len(comps)-1]
	info.path = cgroupPath(comps, len(top) > 0 && string(top) != "/")
	c.byID[id] = info
	return info
}
