package unifiedevent

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// EntityRule is the entity-id rule in words, in the order it is applied; docs/UNIFIED_EVENT.md
// prints it from here.
var EntityRule = []string{
	"`k8s.pod.uid`",
	"`container.id`",
	"`host.name` + `/` + `process.pid`",
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
		if pid, ok := lookupInt(record, resource, KeyProcessPID); ok {
			var buf [64]byte
			b := append(buf[:0], host...)
			b = append(b, '/')
			return string(strconv.AppendInt(b, pid, 10))
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

// ResourceEntityID applies the entity-id rule to resource attributes alone (metrics).
func ResourceEntityID(resource pcommon.Map) string {
	return EntityID(resource, emptyMap)
}

var emptyMap = pcommon.NewMap()

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
