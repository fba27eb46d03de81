package unifiedevent

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The entity id names the workload an event belongs to, not merely the process: a pre-fork
// server (PostgreSQL, nginx, Apache, gunicorn, php-fpm) serves each client from a child of the
// process that listens, and the child that fails — an OOM-killed backend — is neither the
// listener nor the client. Kernel events therefore carry the workload's facts (the pod or
// container, a cgroup that names a service, the listening process whose tree the process is in)
// and the entity is derived from them; the process itself stays in process.pid and the narrative.

// Keys of the workload a kernel event's process belongs to, written by the ebpf receiver.
const (
	KeyWorkloadCgroup = "tapio.workload.cgroup"
	KeyWorkloadPID    = "tapio.workload.pid"
)

var workloadKeySpecs = []KeySpec{
	{KeyWorkloadCgroup, OnResource, "the cgroup that names the workload's service: a systemd `*.service` unit, a container runtime's cgroup (`lxc.payload.*`, `machine-*.scope`) or one matching the receiver's `workload.cgroup_patterns` — never the collector's own cgroup nor its ancestors"},
	{KeyWorkloadPID, OnResource, "the process whose tree the event's process serves in: the nearest of itself and its ancestors (across forks that kept their parent's program) that listens on a TCP socket — PostgreSQL's postmaster for a backend, nginx's master for a worker; equal to `process.pid` for the listener itself"},
}

// EntityRule is the entity-id rule in words, in the order it is applied; docs/UNIFIED_EVENT.md
// prints it from here.
var EntityRule = []string{
	"`k8s.pod.uid`",
	"`container.id`",
	"`host.name` + `/` + `tapio.workload.cgroup`: a cgroup that names a service (a systemd `*.service` unit, a container runtime's cgroup, or a configured pattern); never the collector's own cgroup nor its ancestors — on a host where every process shares one cgroup, that rule would make the whole host one workload",
	"`host.name` + `/` + `tapio.workload.pid`: the process tree up to the process that owns a listening socket — a PostgreSQL backend's entity is its postmaster, an nginx worker's its master; a process that executed another program (a shell, a tool) left its parent's workload",
	"`host.name` + `/` + `process.pid`: the process itself (its thread group leader, never a thread)",
	"`service.name`",
	"the uid of the Kubernetes object an event is about when it is not a pod (`k8s.node.uid`, `k8s.deployment.uid`, `k8s.replicaset.uid`, `k8s.statefulset.uid`, `k8s.daemonset.uid`, `k8s.job.uid`, `k8s.cronjob.uid`)",
	"`k8s.node.name`",
	"`host.name`",
}

var workloadUIDKeys = [...]string{KeyK8sNodeUID, KeyK8sDeploymentUID, KeyK8sReplicaSetUID,
	KeyK8sStatefulSetUID, KeyK8sDaemonSetUID, KeyK8sJobUID, KeyK8sCronJobUID}

// EntityID applies the entity-id rule. Each key is looked up on the record (or span) first, then
// on the resource. It returns "" when the event names no entity at all.
func EntityID(resource, record pcommon.Map) string {
	if v := lookupStr(record, resource, KeyK8sPodUID); v != "" {
		return v
	}
	if v := lookupStr(record, resource, KeyContainerID); v != "" {
		return v
	}
	if host := lookupStr(record, resource, KeyHostName); host != "" {
		if cgroup := lookupStr(record, resource, KeyWorkloadCgroup); cgroup != "" {
			return HostScopedEntityID(host, cgroup)
		}
		if pid, ok := lookupInt(record, resource, KeyWorkloadPID); ok {
			return HostPIDEntityID(host, pid)
		}
		if pid, ok := lookupInt(record, resource, KeyProcessPID); ok {
			return HostPIDEntityID(host, pid)
		}
	}
	if v := lookupStr(record, resource, KeyServiceName); v != "" {
		return v
	}
	for _, key := range workloadUIDKeys {
		if v := lookupStr(record, resource, key); v != "" {
			return v
		}
	}
	if v := lookupStr(record, resource, KeyK8sNodeName); v != "" {
		return v
	}
	return lookupStr(record, resource, KeyHostName)
}

// HostPIDEntityID is the entity id of a process on a host: "node-a/4242".
func HostPIDEntityID(host string, pid int64) string {
	var buf [64]byte
	b := append(buf[:0], host...)
	b = append(b, '/')
	return string(strconv.AppendInt(b, pid, 10))
}

// HostScopedEntityID is the entity id of something named within a host: "node-a/postgresql.service".
func HostScopedEntityID(host, name string) string {
	return host + "/" + name
}

// ResourceEntityID applies the entity-id rule to resource attributes alone (metrics; and records
// that carry no entity key of their own, see IsEntityKey).
func ResourceEntityID(resource pcommon.Map) string {
	return EntityID(resource, emptyMap)
}

var emptyMap = pcommon.NewMap()

// IsEntityKey reports whether the entity-id rule reads key: a span or record without any such
// attribute has its resource's entity (ResourceEntityID), which a caller can derive once per
// resource instead of once per record.
func IsEntityKey(key string) bool {
	switch key {
	case KeyK8sPodUID, KeyContainerID, KeyHostName, KeyWorkloadCgroup, KeyWorkloadPID, KeyProcessPID,
		KeyServiceName, KeyK8sNodeName, KeyK8sNodeUID, KeyK8sDeploymentUID, KeyK8sReplicaSetUID,
		KeyK8sStatefulSetUID, KeyK8sDaemonSetUID, KeyK8sJobUID, KeyK8sCronJobUID:
		return true
	}
	return false
}

// EventString reads a string fact of an event where the schema lets a producer write it: on the
// record (or span) first, then on the resource — process.* for kernel events are on the resource.
func EventString(resource, record pcommon.Map, key string) string {
	return lookupStr(record, resource, key)
}

// EventInt reads an integer fact of an event as EventString does.
func EventInt(resource, record pcommon.Map, key string) (int64, bool) {
	return lookupInt(record, resource, key)
}

func lookupStr(first, second pcommon.Map, key string) string {
	if v := StringAttribute(first, key); v != "" {
		return v
	}
	return StringAttribute(second, key)
}

func lookupInt(first, second pcommon.Map, key string) (int64, bool) {
	if n, ok := IntAttribute(first, key); ok {
		return n, true
	}
	return IntAttribute(second, key)
}
