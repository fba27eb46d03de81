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
	inner := valueMap(field(body, "object"))
	if inner == (pcommon.Map{}) || !isEventObject(inner) {
		return pcommon.Map{}, "", false
	}
	return inner, unifiedevent.StringAttribute(body, "type"), true
}

func isEventObject(m pcommon.Map) bool {
	if unifiedevent.StringAttribute(m, "kind") != "Event" {
		return false
	}
	switch unifiedevent.StringAttribute(m, "apiVersion") {
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

	// values are the body's own pcommon values of the facts above, moved (not copied) into the
	// event's attributes: pdata allocates for every new value, and a moved one costs nothing.
	values [kubernetesValueCount]pcommon.Value
}

type kubernetesValue uint8

const (
	valueReason kubernetesValue = iota
	valueType
	valueEventUID
	valueKind
	valueName
	valueUID
	valueFieldPath
	valueReportingComponent
	valueCount
	valueNamespace
	valueNode
	kubernetesValueCount
)

var errNoReason = errors.New("the Event has no reason")

// eventTopLevel holds the top-level fields of an Event object, gathered in one pass over the body
// because each pcommon lookup is a linear scan.
type eventTopLevel struct {
	apiVersion, reason, eventType, message       pcommon.Value
	involved, metadata, source, series           pcommon.Value
	reportingComponent, reportingInstance, count pcommon.Value
	lastTimestamp, eventTime, firstTimestamp     pcommon.Value
}

func gatherTopLevel(obj pcommon.Map) eventTopLevel {
	var f eventTopLevel
	obj.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "apiVersion":
			f.apiVersion = v
		case "reason":
			f.reason = v
		case "type":
			f.eventType = v
		case "message", "note":
			f.message = v
		case "involvedObject", "regarding":
			f.involved = v
		case "metadata":
			f.metadata = v
		case "source", "deprecatedSource":
			f.source = v
		case "series":
			f.series = v
		case "reportingComponent", "reportingController":
			f.reportingComponent = v
		case "reportingInstance":
			f.reportingInstance = v
		case "count", "deprecatedCount":
			f.count = v
		case "lastTimestamp", "deprecatedLastTimestamp":
			f.lastTimestamp = v
		case "eventTime":
			f.eventTime = v
		case "firstTimestamp", "deprecatedFirstTimestamp":
			f.firstTimestamp = v
		}
		return true
	})
	return f
}

func valueMap(v pcommon.Value) pcommon.Map {
	if v != (pcommon.Value{}) && v.Type() == pcommon.ValueTypeMap {
		return v.Map()
	}
	return pcommon.Map{}
}

func readKubernetesEvent(obj pcommon.Map) (kubernetesEvent, error) {
	var ev kubernetesEvent
	f := gatherTopLevel(obj)
	if ev.reason = unifiedevent.StringValue(f.reason); ev.reason == "" {
		return ev, errNoReason
	}
	ev.values[valueReason] = f.reason
	involved := valueMap(f.involved)
	if involved == (pcommon.Map{}) {
		return ev, fmt.Errorf("the %s Event %q has no involvedObject (regarding) object", unifiedevent.StringValue(f.apiVersion), ev.reason)
	}
	ev.kind = ev.str(valueKind, involved, "kind")
	ev.name = ev.str(valueName, involved, "name")
	if ev.kind == "" || ev.name == "" {
		return ev, fmt.Errorf("the Event %q: its involved object has no kind or name", ev.reason)
	}
	ev.uid = ev.str(valueUID, involved, "uid")
	ev.fieldPath = ev.str(valueFieldPath, involved, "fieldPath")
	ev.namespace = ev.str(valueNamespace, involved, "namespace")
	meta := valueMap(f.metadata)
	if ev.namespace == "" {
		ev.namespace = ev.str(valueNamespace, meta, "namespace")
	}
	ev.eventUID = ev.str(valueEventUID, meta, "uid")
	if ev.eventType = unifiedevent.StringValue(f.eventType); ev.eventType != "" {
		ev.values[valueType] = f.eventType
	}
	ev.message = unifiedevent.StringValue(f.message)

	source := valueMap(f.source)
	ev.node = ev.str(valueNode, source, "host")
	ev.reportingComponent = ev.str(valueReportingComponent, source, "component")
	if ev.reportingComponent == "" {
		if ev.reportingComponent = unifiedevent.StringValue(f.reportingComponent); ev.reportingComponent != "" {
			ev.values[valueReportingComponent] = f.reportingComponent
		}
	}
	if ev.node == "" && ev.reportingComponent == "kubelet" {
		if ev.node = unifiedevent.StringValue(f.reportingInstance); ev.node != "" {
			ev.values[valueNode] = f.reportingInstance
		}
	}
	if ev.kind == "Node" && ev.node == "" {
		ev.node = ev.name
	}

	series := valueMap(f.series)
	ev.count = ev.int(valueCount, series, "count")
	if ev.count == 0 {
		if n, ok := unifiedevent.IntValue(f.count); ok && n > 0 {
			ev.count = n
			ev.values[valueCount] = f.count
		}
	}
	if ev.count < 1 {
		ev.count = 1
		ev.values[valueCount] = pcommon.Value{}
	}

	// The event's own time is its latest occurrence; older fields are fallbacks that older
	// reporters fill instead.
	for _, candidate := range [...]string{unifiedevent.StringAttribute(series, "lastObservedTime"), unifiedevent.StringValue(f.lastTimestamp),
		unifiedevent.StringValue(f.eventTime), unifiedevent.StringValue(f.firstTimestamp), unifiedevent.StringAttribute(meta, "creationTimestamp")} {
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

// putResource writes who the event is about onto the resource it belongs to, moving the body's
// values where it can.
func (ev *kubernetesEvent) putResource(res pcommon.Map, limit int) {
	res.EnsureCapacity(res.Len() + 5)
	ev.move(res, unifiedevent.KeyK8sNamespaceName, valueNamespace, ev.namespace, limit)
	if keys, ok := involvedObjectKeys[ev.kind]; ok {
		if ev.kind == "Node" {
			ev.values[valueNode] = pcommon.Value{} // the name is the node; k8s.node.name is written once
		}
		ev.move(res, keys[0], valueName, ev.name, limit)
		ev.move(res, keys[1], valueUID, ev.uid, limit)
	}
	if c := containerName(ev.fieldPath); c != "" && ev.kind == "Pod" {
		res.PutStr(unifiedevent.KeyK8sContainerName, unifiedevent.Truncate(c, limit))
	}
	if ev.kind != "Node" {
		ev.move(res, unifiedevent.KeyK8sNodeName, valueNode, ev.node, limit)
	}
}

// putRecord writes the Kubernetes-specific facts onto the event's attributes. The involved
// object's name and uid are already on the resource when its kind has semantic-convention keys.
func (ev *kubernetesEvent) putRecord(attrs pcommon.Map, limit int) {
	ev.move(attrs, unifiedevent.KeyK8sEventReason, valueReason, ev.reason, limit)
	ev.move(attrs, unifiedevent.KeyK8sEventType, valueType, ev.eventType, limit)
	if v := ev.values[valueCount]; v != (pcommon.Value{}) && v.Type() == pcommon.ValueTypeInt {
		v.MoveTo(attrs.PutEmpty(unifiedevent.KeyK8sEventCount))
	} else {
		attrs.PutInt(unifiedevent.KeyK8sEventCount, ev.count)
	}
	ev.move(attrs, unifiedevent.KeyK8sEventUID, valueEventUID, ev.eventUID, limit)
	ev.move(attrs, unifiedevent.KeyK8sInvolvedKind, valueKind, ev.kind, limit)
	if _, onResource := involvedObjectKeys[ev.kind]; !onResource {
		ev.move(attrs, unifiedevent.KeyK8sInvolvedName, valueName, ev.name, limit)
		ev.move(attrs, unifiedevent.KeyK8sInvolvedUID, valueUID, ev.uid, limit)
	}
	ev.move(attrs, unifiedevent.KeyK8sInvolvedFieldPath, valueFieldPath, ev.fieldPath, limit)
	ev.move(attrs, unifiedevent.KeyK8sEventReportingComponent, valueReportingComponent, ev.reportingComponent, limit)
}

// move puts the body's own value under key, or a truncated copy when it is over the limit.
// Empty facts are not written.
func (ev *kubernetesEvent) move(attrs pcommon.Map, key string, which kubernetesValue, s string, limit int) {
	if s == "" {
		return
	}
	if v := ev.values[which]; v != (pcommon.Value{}) && len(s) <= limit {
		v.MoveTo(attrs.PutEmpty(key))
		ev.values[which] = pcommon.Value{}
		return
	}
	attrs.PutStr(key, unifiedevent.Truncate(s, limit))
}

func (ev *kubernetesEvent) str(which kubernetesValue, m pcommon.Map, key string) string {
	v := field(m, key)
	s := unifiedevent.StringValue(v)
	if s != "" {
		ev.values[which] = v
	}
	return s
}

func (ev *kubernetesEvent) int(which kubernetesValue, m pcommon.Map, key string) int64 {
	v := field(m, key)
	n, _ := unifiedevent.IntValue(v)
	if n != 0 {
		ev.values[which] = v
	}
	return n
}

func (ev *kubernetesEvent) narrative(limit int) string {
	return unifiedevent.Truncate(unifiedevent.KubernetesNarrative(ev.eventType, ev.reason, ev.kind, ev.namespace, ev.name, ev.message, ev.count), limit)
}

// containsFold is a case-insensitive strings.Contains that does not allocate; it only compares
// where the first byte already matches.
func containsFold(s, substr string) bool {
	n := len(substr)
	if n == 0 {
		return true
	}
	first, firstUpper := substr[0]|0x20, substr[0]&^0x20
	for i := 0; i+n <= len(s); i++ {
		if c := s[i]; (c == first || c == firstUpper) && strings.EqualFold(s[i:i+n], substr) {
			return true
		}
	}
	return false
}

// field reads m[key]; the zero Value when m is the zero Map or has no such key, so that reads
// chain through absent parts of an object.
func field(m pcommon.Map, key string) pcommon.Value {
	if m == (pcommon.Map{}) {
		return pcommon.Value{}
	}
	if v, ok := m.Get(key); ok {
		return v
	}
	return pcommon.Value{}
}
