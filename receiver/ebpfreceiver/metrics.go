package ebpfreceiver

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/metadata"
)

// Per-container counters emitted on metrics pipelines: cumulative sums since the receiver started.
var counterMetrics = []struct {
	name, description string
	kind              kernel.Kind // 0: retransmitted segments
}{
	{"tapio.kernel.oom_kills", "Processes killed by the kernel OOM killer.", kernel.KindOOMKill},
	{"tapio.kernel.abnormal_exits", "Processes that exited with a non-zero code or a terminating signal.", kernel.KindProcessExit},
	{"tapio.kernel.fatal_signals", "Fatal signals delivered to processes.", kernel.KindFatalSignal},
	{"tapio.network.connections_refused", "Outgoing TCP connections refused by the peer.", kernel.KindConnectionRefused},
	{"tapio.network.connection_timeouts", "Outgoing TCP connections that timed out before being established.", kernel.KindConnectionTimeout},
	{"tapio.network.connection_resets", "TCP connections reset, sent or received.", kernel.KindConnectionReset},
	{"tapio.storage.io_errors", "Block requests that completed with an error, by issuing container.", kernel.KindIOError},
	{"tapio.network.retransmits", "TCP segments retransmitted.", 0},
}

// entityCounters counts events per cgroup (a container, a pod, a service, or a host's processes), bounded
// by max entities; the least recently active one is evicted and counted.
type entityCounters struct {
	cgroups *cgroupCache
	max     int
	host    string
	start   pcommon.Timestamp
	byGroup map[uint64]*entityCount
	evicted int64
}

type entityCount struct {
	containerID, podUID, workload string
	counts                        [kernel.KindCount]uint64
	retransmits                   uint64
	lastSeen                      time.Time
}

func newEntityCounters(cgroups *cgroupCache, max int, host string, start time.Time) *entityCounters {
	return &entityCounters{cgroups: cgroups, max: max, host: host, start: pcommon.NewTimestampFromTime(start), byGroup: map[uint64]*entityCount{}}
}

func (c *entityCounters) entry(id *kernel.Identity, now time.Time) *entityCount {
	e, ok := c.byGroup[id.CgroupID]
	if !ok {
		if len(c.byGroup) >= c.max {
			c.evictOldest()
		}
		e = &entityCount{}
		if id.Known() {
			info := c.cgroups.info(id.CgroupID)
			e.containerID, e.podUID, e.workload = info.containerID, info.podUID, info.workload
		}
		c.byGroup[id.CgroupID] = e
	}
	e.lastSeen = now
	return e
}

func (c *entityCounters) evictOldest() {
	var oldestKey uint64
	var oldest *entityCount
	for k, e := range c.byGroup {
		if oldest == nil || e.lastSeen.Before(oldest.lastSeen) {
			oldestKey, oldest = k, e
		}
	}
	delete(c.byGroup, oldestKey)
	c.evicted++
}

func (c *entityCounters) count(id *kernel.Identity, kind kernel.Kind, n uint64, now time.Time) {
	c.entry(id, now).counts[kind] += n
}

func (c *entityCounters) countRetransmits(id *kernel.Identity, n uint64, now time.Time) {
	c.entry(id, now).retransmits += n
}

func (c *entityCounters) takeEvicted() int64 {
	n := c.evicted
	c.evicted = 0
	return n
}

func (c *entityCounters) build(now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	ts := pcommon.NewTimestampFromTime(now)
	for _, e := range c.byGroup {
		rm := md.ResourceMetrics().AppendEmpty()
		res := rm.Resource().Attributes()
		res.PutStr(unifiedevent.KeyHostName, c.host)
		if e.containerID != "" {
			res.PutStr(unifiedevent.KeyContainerID, e.containerID)
		}
		if e.podUID != "" {
			res.PutStr(unifiedevent.KeyK8sPodUID, e.podUID)
		}
		if e.workload != "" {
			res.PutStr(unifiedevent.KeyWorkloadCgroup, e.workload)
		}
		res.PutStr(unifiedevent.KeyEntityID, unifiedevent.ResourceEntityID(res))
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(metadata.ScopeName)
		for _, cm := range counterMetrics {
			value := e.retransmits
			if cm.kind != 0 {
				value = e.counts[cm.kind]
			}
			if value == 0 {
				continue
			}
			m := sm.Metrics().AppendEmpty()
			m.SetName(cm.name)
			m.SetDescription(cm.description)
			m.SetUnit("{events}")
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := sum.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(c.start)
			dp.SetTimestamp(ts)
			dp.SetIntValue(int64(value))
		}
	}
	return md
}
