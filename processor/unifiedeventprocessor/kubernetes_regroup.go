package unifiedeventprocessor

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/processor/unifiedeventprocessor/internal/metadata"
)

// kubernetesRegrouper moves Kubernetes events out of the k8sobjects receiver's per-namespace
// resources into one resource per involved object, because the resource is where an event says
// who it is about (and where k8sattributes enriches by pod uid).
type kubernetesRegrouper struct {
	used   bool
	out    plog.Logs
	groups map[involvedObject]kubernetesGroup
}

// involvedObject identifies a group. Objects with a uid are keyed by uid and container alone:
// hashing two strings instead of six is most of the cost of grouping.
type involvedObject struct {
	uid, container              string
	namespace, kind, name, node string
}

type kubernetesGroup struct {
	records  plog.LogRecordSlice
	entityID string
}

func (g *kubernetesRegrouper) add(n *normalizer, resource pcommon.Resource, rec plog.LogRecord, ev *kubernetesEvent, def unifiedevent.Definition) {
	if !g.used {
		g.used = true
		g.out = plog.NewLogs()
		g.groups = make(map[involvedObject]kubernetesGroup)
	}
	key := involvedObject{uid: ev.uid, container: containerName(ev.fieldPath)}
	if ev.uid == "" || ev.kind == "Node" {
		key.namespace, key.kind, key.name, key.node = ev.namespace, ev.kind, ev.name, ev.node
	}
	group, ok := g.groups[key]
	if !ok {
		rl := g.out.ResourceLogs().AppendEmpty()
		resource.CopyTo(rl.Resource())
		ev.putResource(rl.Resource().Attributes(), n.cfg.MaxNarrativeBytes)
		sl := rl.ScopeLogs().AppendEmpty()
		n.claimScope(sl.Scope())
		group = kubernetesGroup{records: sl.LogRecords(), entityID: unifiedevent.ResourceEntityID(rl.Resource().Attributes())}
		g.groups[key] = group
	}

	out := group.records.AppendEmpty()
	// The record moves whole: its attributes and the body values put below travel with it
	// instead of being copied.
	rec.MoveTo(out)
	n.writeKubernetesEvent(out, ev, def, group.entityID)
}

// claimScope marks a scope as this processor's: its records are now UnifiedEvents it wrote.
func (n *normalizer) claimScope(scope pcommon.InstrumentationScope) {
	scope.SetName(metadata.ScopeName)
	scope.SetVersion(n.version)
	unifiedevent.MarkScope(scope)
}

// writeKubernetesEvent rewrites rec, whose body is the Event object, as the UnifiedEvent of ev.
func (n *normalizer) writeKubernetesEvent(rec plog.LogRecord, ev *kubernetesEvent, def unifiedevent.Definition, entityID string) {
	narrative := ev.narrative(n.cfg.MaxNarrativeBytes)
	attrs := rec.Attributes()
	attrs.Remove("event.domain") // the receiver's, and deprecated: event.name now says the domain
	attrs.EnsureCapacity(attrs.Len() + 16)
	ue := unifiedevent.Of(attrs)
	ue.Stamp(def, sourceK8sObjects)
	ue.SetEntityID(entityID)
	ev.putRecord(attrs, n.cfg.MaxNarrativeBytes)
	if ev.when.IsZero() {
		rec.SetTimestamp(rec.ObservedTimestamp())
	} else {
		rec.SetTimestamp(pcommon.NewTimestampFromTime(ev.when))
	}
	sev := def.Severity
	if ev.eventType == "Warning" && sev < plog.SeverityNumberWarn {
		sev = plog.SeverityNumberWarn
	}
	unifiedevent.SetSeverity(rec, sev)
	rec.Body().SetStr(narrative)
}
