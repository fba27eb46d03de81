package unifiedeventprocessor

import (
	"context"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// Sources named in tapio.source by this processor.
const (
	sourceOTLP       = "otlp"
	sourceK8sObjects = "k8sobjects"
)

func (n *normalizer) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var t tally
	var regrouped kubernetesRegrouper
	var ids unifiedevent.EventIDs
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			at := &recordPlace{resource: rl.Resource(), scope: sl.Scope(), sole: sls.Len() == 1 && sl.LogRecords().Len() == 1, ids: &ids}
			at.entity.attrs = at.resource.Attributes()
			normalizedHere := false
			sl.LogRecords().RemoveIf(func(rec plog.LogRecord) bool {
				remove, normalized := n.normalizeRecord(at, rec, &t, &regrouped)
				normalizedHere = normalizedHere || normalized
				return remove
			})
			if normalizedHere {
				unifiedevent.MarkScope(sl.Scope())
			}
		}
		sls.RemoveIf(func(sl plog.ScopeLogs) bool { return sl.LogRecords().Len() == 0 })
	}
	rls.RemoveIf(func(rl plog.ResourceLogs) bool { return rl.ScopeLogs().Len() == 0 })
	if regrouped.used {
		regrouped.out.ResourceLogs().MoveAndAppendTo(rls)
	}
	n.report(ctx, &t)
	if rls.Len() == 0 {
		return ld, processorhelper.ErrSkipProcessingData
	}
	return ld, nil
}

// recordPlace is where a record sits. sole marks the only record of its resource, which a
// Kubernetes event can then take over in place instead of moving to a resource of its own.
type recordPlace struct {
	resource pcommon.Resource
	scope    pcommon.InstrumentationScope
	sole     bool
	// entity is the resource's, for application logs (a Kubernetes event, which may take the
	// resource over, derives its own).
	entity resourceEntity
	// ids are the Consume call's event ids, made a block at a time.
	ids *unifiedevent.EventIDs
}

// normalizeRecord turns one log record into a UnifiedEvent, validates one that already is, or
// leaves it alone. remove is true when the record leaves its place: dropped by rule, or moved to
// a resource of its own (Kubernetes events).
func (n *normalizer) normalizeRecord(at *recordPlace, rec plog.LogRecord, t *tally, regrouped *kubernetesRegrouper) (remove, normalized bool) {
	attrs := unifiedevent.Of(rec.Attributes())
	if name := attrs.Name(); unifiedevent.IsTapioName(name) {
		return n.completeEvent(at.resource, attrs, name, t)
	}
	if body := rec.Body(); body.Type() == pcommon.ValueTypeMap {
		if obj, watchType, ok := kubernetesEventObject(body.Map()); ok {
			return n.normalizeKubernetesEvent(at, rec, obj, watchType, t, regrouped)
		}
	}
	return n.normalizeApplicationLog(at, rec, attrs, t)
}

// completeEvent handles records that arrive already normalised (from the ebpf receiver, or from
// another Tapio collector): validated and completed, never rewritten.
func (n *normalizer) completeEvent(resource pcommon.Resource, attrs unifiedevent.Attributes, name string, t *tally) (remove, normalized bool) {
	if name == string(unifiedevent.CorrelationName) {
		return false, false
	}
	def, err := attrs.Validate()
	if err != nil {
		reason := invalidInconsistentEvent
		if def.Name == "" {
			reason = invalidUnknownName
		}
		n.noteInvalid(t, reason, err)
		return n.cfg.OnInvalid == Drop, false
	}
	if !n.names.allows(def.Name) {
		t.dropped[dropExcluded]++
		return true, false
	}
	attrs.Complete(def, resource.Attributes())
	t.normalized[def.Layer]++
	return false, true
}

func (n *normalizer) normalizeKubernetesEvent(at *recordPlace, rec plog.LogRecord, obj pcommon.Map, watchType string, t *tally, regrouped *kubernetesRegrouper) (remove, normalized bool) {
	ev, err := readKubernetesEvent(obj)
	if err != nil {
		n.noteInvalid(t, invalidKubernetesEvent, err)
		return n.cfg.OnInvalid == Drop, false
	}
	if watchType == watchDeleted {
		t.dropped[dropKubernetesDeleted]++
		return true, false
	}
	name := classifyKubernetesEvent(&ev)
	if name == unifiedevent.KubernetesNormal && n.cfg.Kubernetes.NormalEvents == Drop {
		t.dropped[dropKubernetesNormal]++
		return true, false
	}
	if !n.names.allows(name) {
		t.dropped[dropExcluded]++
		return true, false
	}
	def, _ := unifiedevent.Lookup(string(name))
	t.normalized[unifiedevent.LayerKubernetes]++
	if at.sole {
		// The watch-mode receiver sends one event per call: rewrite its resource in place.
		res := at.resource.Attributes()
		ev.putResource(res, n.cfg.MaxNarrativeBytes)
		n.claimScope(at.scope)
		n.writeKubernetesEvent(rec, &ev, def, unifiedevent.ResourceEntityID(res))
		return false, true
	}
	regrouped.add(n, at.resource, rec, &ev, def)
	return true, true
}

func (n *normalizer) normalizeApplicationLog(at *recordPlace, rec plog.LogRecord, attrs unifiedevent.Attributes, t *tally) (remove, normalized bool) {
	m := attrs.Map()
	var name unifiedevent.Name
	switch {
	case hasAny(m, unifiedevent.KeyExceptionType, unifiedevent.KeyExceptionMessage):
		name = unifiedevent.Exception
	case atLeastError(rec):
		name = unifiedevent.ErrorLog
	default:
		if n.cfg.Logs.Unmatched == Drop {
			t.dropped[dropUnmatched]++
			return true, false
		}
		return false, false
	}
	if !n.names.allows(name) {
		t.dropped[dropExcluded]++
		return true, false
	}
	def, _ := unifiedevent.Lookup(string(name))
	entity := at.entity.of(m, recordNamesEntity(m))
	// Room for exactly what is written below (the original name, the stamp, the entity id), at
	// once: a decoded record's attributes were appended one by one, so there is often room.
	ownName, hasOwn := "", false
	if own, ok := m.Get(unifiedevent.KeyEventName); ok {
		ownName, hasOwn = own.AsString(), true
	}
	written := unifiedevent.StampedKeys
	if hasOwn {
		written++ // an upper bound: the stamp then overwrites event.name rather than adding it
	}
	if entity != "" {
		written++
	}
	m.EnsureCapacity(m.Len() + written)
	if hasOwn {
		// An application's own event name is kept beside ours rather than lost.
		m.PutStr(unifiedevent.KeyOriginalEventName, ownName)
	}
	attrs.StampWithID(def, sourceOTLP, at.ids.Next())
	attrs.SetEntityID(entity)
	if rec.SeverityNumber() == plog.SeverityNumberUnspecified && rec.SeverityText() == "" {
		rec.SetSeverityNumber(def.Severity)
	}
	if isEmptyBody(rec.Body()) && name == unifiedevent.Exception {
		rec.Body().SetStr(unifiedevent.Truncate(exceptionSentence(m), n.cfg.MaxNarrativeBytes))
	}
	t.normalized[unifiedevent.LayerApplication]++
	return false, true
}

func hasAny(m pcommon.Map, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m.Get(k); ok {
			return true
		}
	}
	return false
}

// atLeastError reads the severity number, or the severity text when a source sets only that.
func atLeastError(rec plog.LogRecord) bool {
	if sev := rec.SeverityNumber(); sev != plog.SeverityNumberUnspecified {
		return sev >= plog.SeverityNumberError
	}
	text := rec.SeverityText()
	for _, level := range [...]string{"ERROR", "ERR", "FATAL", "CRITICAL", "CRIT", "ALERT", "EMERG", "EMERGENCY", "PANIC"} {
		if strings.EqualFold(text, level) {
			return true
		}
	}
	return false
}

func isEmptyBody(v pcommon.Value) bool {
	return v.Type() == pcommon.ValueTypeEmpty || (v.Type() == pcommon.ValueTypeStr && v.Str() == "")
}

func exceptionSentence(m pcommon.Map) string {
	typ, msg := "", ""
	if v, ok := m.Get(unifiedevent.KeyExceptionType); ok {
		typ = v.AsString()
	}
	if v, ok := m.Get(unifiedevent.KeyExceptionMessage); ok {
		msg = v.AsString()
	}
	switch {
	case typ == "":
		return "Exception: " + msg
	case msg == "":
		return "Exception " + typ
	}
	return "Exception " + typ + ": " + msg
}
