package unifiedeventprocessor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// watchDeleted is the watch type of an Event object being garbage-collected by the API server:
// it is not a new occurrence, so it never becomes an event.
const watchDeleted = "DELETED"

// kubernetesEventObject recognises a Kubernetes Event as the k8sobjects receiver emits it: in pull
// mode the body is the object; in watch mode it is {type, object}. It returns the object and the
// watch type ("" in pull mode).
func kubernetesEventObject(body pcommon.Map) (object pcommon.Map, watchType string, ok bool) {
	if isEventObject(body) {
		return body, "", true
	}
	inner, ok := mapField(body, "object")
	if !ok || !isEventObject(inner) {
		return pcommon.Map{}, "", false
	}
	return inner, strField(body, "type"), true
}

func isEventObject(m pcommon.Map) bool {
	if strField(m, "kind") != "Event" {
		return false
	}
	switch strField(m, "apiVersion") {
	case "v1", "events.k8s.io/v1", "events.k8s.io/v1beta1":
		return true
	}
	return false
}

// kubernetesEvent is what Tapio reads from a core/v1 or events.k8s.io/v1 Event. The strings point
// into the record's body; nothing is copied until the event is written.
type kubernetesEvent struct {
	eventType          string
	reason             string
	message            string
	namespace          string
	kind               string
	name               string
	uid                string
	fieldPath          string
	node               string
	reportingComponent string
	eventUID           string
	count              int64
	when               time.Time
}

var errNoReason = errors.New("the Event has no reason")

func readKubernetesEvent(obj pcommon.Map) (kubernetesEvent, error) {
	var ev kubernetesEvent
	coreV1 := strField(obj, "apiVersion") == "v1"
	involvedKey, messageKey, sourceKey := "regarding", "note", "deprecatedSource"
	if coreV1 {
		involvedKey, messageKey, sourceKey = "involvedObject", "message", "source"
	}
	ev.reason = strField(obj, "reason")
	if ev.reason == "" {
		return ev, errNoReason
	}
	involved, ok := mapField(obj, involvedKey)
	if !ok {
		return ev, fmt.Errorf("the %s Event %q has no %s object", strField(obj, "apiVersion"), ev.reason, involvedKey)
	}
	ev.kind = strField(involved, "kind")
	ev.name = strField(involved, "name")
	if ev.kind == "" || ev.name == "" {
		return ev, fmt.Errorf("the Event %q: %s has no kind or name", ev.reason, involvedKey)
	}
	ev.uid = strField(involved, "uid")
	ev.fieldPath = strField(involved, "fieldPath")
	ev.namespace = strField(involved, "namespace")
	meta, _ := mapField(obj, "metadata")
	if ev.namespace == "" {
		ev.namespace = strField(meta, "namespace")
	}
	ev.eventUID = strField(meta, "uid")
	ev.eventType = strField(obj, "type")
	ev.message = strField(obj, messageKey)

	source, _ := mapField(obj, sourceKey)
	ev.node = strField(source, "host")
	ev.reportingComponent = strField(source, "component")
	if ev.reportingComponent == "" {
		if coreV1 {
			ev.reportingComponent = strField(obj, "reportingComponent")
		} else {
			ev.reportingComponent = strField(obj, "reportingController")
		}
	}
	if ev.node == "" && ev.reportingComponent == "kubelet" {
		ev.node = strField(obj, "reportingInstance")
	}
	if ev.kind == "Node" && ev.node == "" {
		ev.node = ev.name
	}

	series, _ := mapField(obj, "series")
	ev.count = intField(series, "count")
	if ev.count == 0 {
		if coreV1 {
			ev.count = intField(obj, "count")
		} else {
			ev.count = intField(obj, "deprecatedCount")
		}
	}
	if ev.count < 1 {
		ev.count = 1
	}

	// The event's own time is its latest occurrence; older fields are fallbacks that older
	// reporters fill instead.
	lastKey, firstKey := "deprecatedLastTimestamp", "deprecatedFirstTimestamp"
	if coreV1 {
		lastKey, firstKey = "lastTimestamp", "firstTimestamp"
	}
	for _, candidate := range [...]string{strField(series, "lastObservedTime"), strField(obj, lastKey),
		strField(obj, "eventTime"), strField(obj, firstKey), strField(meta, "creationTimestamp")} {
		if candidate == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, candidate); err == nil {
			ev.when = t
			break
		}
	}
	return ev, nil
}

// classifyKubernetesEvent maps a reason to the catalogue. The kubelet reports both a crash loop and
// an image pull back-off as "BackOff" (and a failed pull as "Failed"), so the message decides.
func classifyKubernetesEvent(ev *kubernetesEvent) unifiedevent.Name {
	switch ev.reason {
	case "OOMKilling", "OOMKilled":
		return unifiedevent.PodOOMKilled
	case "BackOff", "CrashLoopBackOff":
		if containsFold(ev.message, "pulling image") {
			return unifiedevent.ImagePullFailed
		}
		if ev.reason == "CrashLoopBackOff" || ev.eventType != "Normal" {
			return unifiedevent.CrashLoopBackOff
		}
	case "Evicted":
		return unifiedevent.PodEvicted
	case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InspectFailed":
		return unifiedevent.ImagePullFailed
	case "Failed":
		if containsFold(ev.message, "pull image") || containsFold(ev.message, "ErrImagePull") {
			return unifiedevent.ImagePullFailed
		}
	case "FailedScheduling":
		return unifiedevent.FailedScheduling
	case "Unhealthy":
		return unifiedevent.ProbeFailed
	}
	if ev.eventType == "Normal" {
		return unifiedevent.KubernetesNormal
	}
	return unifiedevent.KubernetesWarning
}

// involvedObjectKeys maps an involved object's kind to the semantic-convention keys of its name
// and uid on the resource.
var involvedObjectKeys = map[string][2]string{
	"Pod":         {unifiedevent.KeyK8sPodName, unifiedevent.KeyK8sPodUID},
	"Node":        {unifiedevent.KeyK8sNodeName, unifiedevent.KeyK8sNodeUID},
	"Deployment":  {unifiedevent.KeyK8sDeploymentName, unifiedevent.KeyK8sDeploymentUID},
	"ReplicaSet":  {unifiedevent.KeyK8sReplicaSetName, unifiedevent.KeyK8sReplicaSetUID},
	"StatefulSet": {unifiedevent.KeyK8sStatefulSetName, unifiedevent.KeyK8sStatefulSetUID},
	"DaemonSet":   {unifiedevent.KeyK8sDaemonSetName, unifiedevent.KeyK8sDaemonSetUID},
	"Job":         {unifiedevent.KeyK8sJobName, unifiedevent.KeyK8sJobUID},
	"CronJob":     {unifiedevent.KeyK8sCronJobName, unifiedevent.KeyK8sCronJobUID},
}

// containerName reads the container out of a field path such as spec.containers{app}.
func containerName(fieldPath string) string {
	for _, prefix := range [...]string{"spec.containers{", "spec.initContainers{", "spec.ephemeralContainers{"} {
		if strings.HasPrefix(fieldPath, prefix) {
			rest := fieldPath[len(prefix):]
			if end := strings.IndexByte(rest, '}'); end > 0 {
				return rest[:end]
			}
		}
	}
	return ""
}

// putResource writes who the event is about onto the resource it is regrouped under.
func (ev *kubernetesEvent) putResource(res pcommon.Map, limit int) {
	if ev.namespace != "" {
		res.PutStr(unifiedevent.KeyK8sNamespaceName, unifiedevent.Truncate(ev.namespace, limit))
	}
	if keys, ok := involvedObjectKeys[ev.kind]; ok {
		res.PutStr(keys[0], unifiedevent.Truncate(ev.name, limit))
		if ev.uid != "" {
			res.PutStr(keys[1], unifiedevent.Truncate(ev.uid, limit))
		}
	}
	if c := containerName(ev.fieldPath); c != "" && ev.kind == "Pod" {
		res.PutStr(unifiedevent.KeyK8sContainerName, unifiedevent.Truncate(c, limit))
	}
	if ev.node != "" {
		res.PutStr(unifiedevent.KeyK8sNodeName, unifiedevent.Truncate(ev.node, limit))
	}
}

// putRecord writes the Kubernetes-specific facts onto the event's attributes.
func (ev *kubernetesEvent) putRecord(attrs pcommon.Map, limit int) {
	attrs.PutStr(unifiedevent.KeyK8sEventReason, unifiedevent.Truncate(ev.reason, limit))
	if ev.eventType != "" {
		attrs.PutStr(unifiedevent.KeyK8sEventType, unifiedevent.Truncate(ev.eventType, limit))
	}
	attrs.PutInt(unifiedevent.KeyK8sEventCount, ev.count)
	if ev.eventUID != "" {
		attrs.PutStr(unifiedevent.KeyK8sEventUID, unifiedevent.Truncate(ev.eventUID, limit))
	}
	attrs.PutStr(unifiedevent.KeyK8sInvolvedKind, unifiedevent.Truncate(ev.kind, limit))
	attrs.PutStr(unifiedevent.KeyK8sInvolvedName, unifiedevent.Truncate(ev.name, limit))
	if ev.uid != "" {
		attrs.PutStr(unifiedevent.KeyK8sInvolvedUID, unifiedevent.Truncate(ev.uid, limit))
	}
	if ev.fieldPath != "" {
		attrs.PutStr(unifiedevent.KeyK8sInvolvedFieldPath, unifiedevent.Truncate(ev.fieldPath, limit))
	}
	if ev.reportingComponent != "" {
		attrs.PutStr(unifiedevent.KeyK8sEventReportingComponent, unifiedevent.Truncate(ev.reportingComponent, limit))
	}
}

func (ev *kubernetesEvent) narrative(limit int) string {
	return unifiedevent.Truncate(unifiedevent.KubernetesNarrative(ev.eventType, ev.reason, ev.kind, ev.namespace, ev.name, ev.message, ev.count), limit)
}

func strField(m pcommon.Map, key string) string {
	if m == (pcommon.Map{}) {
		return ""
	}
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

func mapField(m pcommon.Map, key string) (pcommon.Map, bool) {
	if m == (pcommon.Map{}) {
		return pcommon.Map{}, false
	}
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeMap {
		return v.Map(), true
	}
	return pcommon.Map{}, false
}

func intField(m pcommon.Map, key string) int64 {
	if m == (pcommon.Map{}) {
		return 0
	}
	v, ok := m.Get(key)
	if !ok {
		return 0
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		return int64(v.Double())
	}
	return 0
}

// containsFold is a case-insensitive strings.Contains that does not allocate.
func containsFold(s, substr string) bool {
	n := len(substr)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], substr) {
			return true
		}
	}
	return false
}
