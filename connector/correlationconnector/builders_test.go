package correlationconnector

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// ev describes one UnifiedEvent log record for tests.
type ev struct {
	name     unifiedevent.Name
	id       int // event id number; 0 for none
	at       time.Duration
	entity   string
	service  string
	body     string
	attrs    map[string]any
	resource map[string]any
	trace    pcommon.TraceID
}

func eventID(n int) string { return fmt.Sprintf("%032x", n) }

func traceID(n uint64) pcommon.TraceID {
	var t pcommon.TraceID
	binary.BigEndian.PutUint64(t[:8], n)
	binary.BigEndian.PutUint64(t[8:], n*0x9E3779B97F4A7C15+1)
	return t
}

func spanID(n uint64) pcommon.SpanID {
	var s pcommon.SpanID
	binary.BigEndian.PutUint64(s[:], n+1)
	return s
}

func logsOf(events ...ev) plog.Logs {
	ld := plog.NewLogs()
	for _, e := range events {
		rl := ld.ResourceLogs().AppendEmpty()
		res := rl.Resource().Attributes()
		if e.service != "" {
			res.PutStr(unifiedevent.KeyServiceName, e.service)
		}
		if e.entity != "" {
			res.PutStr(unifiedevent.KeyK8sPodUID, e.entity)
		}
		_ = putAll(res, e.resource)
		rec := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(scenarioStart.Add(e.at)))
		body := e.body
		if body == "" {
			body = fmt.Sprintf("%s on %s", e.name, e.entity)
		}
		rec.Body().SetStr(body)
		if !e.trace.IsEmpty() {
			rec.SetTraceID(e.trace)
		}
		m := rec.Attributes()
		m.PutStr(unifiedevent.KeyEventName, string(e.name))
		if e.id != 0 {
			m.PutStr(unifiedevent.KeyEventID, eventID(e.id))
		}
		if e.entity != "" {
			m.PutStr(unifiedevent.KeyEntityID, e.entity)
		}
		_ = putAll(m, e.attrs)
	}
	return ld
}

func putAll(m pcommon.Map, kv map[string]any) error {
	for k, v := range kv {
		switch x := v.(type) {
		case string:
			m.PutStr(k, x)
		case int:
			m.PutInt(k, int64(x))
		case int64:
			m.PutInt(k, x)
		case float64:
			m.PutDouble(k, x)
		default:
			panic(fmt.Sprintf("putAll: %s is a %T, which tests do not write", k, v)) // not silently dropped
		}
	}
	return nil
}

// sp describes one span for tests.
type sp struct {
	trace   pcommon.TraceID
	span    uint64
	parent  uint64 // 0 for a root span
	kind    ptrace.SpanKind
	name    unifiedevent.Name // "" for an unremarkable span
	id      int
	service string
	entity  string
	end     time.Duration
	attrs   map[string]any
}

func tracesOf(spans ...sp) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr(unifiedevent.KeyServiceName, s.service)
		if s.entity != "" {
			rs.Resource().Attributes().PutStr(unifiedevent.KeyK8sPodUID, s.entity)
		}
		span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		span.SetTraceID(s.trace)
		span.SetSpanID(spanID(s.span))
		if s.parent != 0 {
			span.SetParentSpanID(spanID(s.parent))
		}
		span.SetKind(s.kind)
		span.SetName("op")
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(scenarioStart.Add(s.end - 50*time.Millisecond)))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(scenarioStart.Add(s.end)))
		m := span.Attributes()
		if s.name != "" {
			m.PutStr(unifiedevent.KeyEventName, string(s.name))
			if s.id != 0 {
				m.PutStr(unifiedevent.KeyEventID, eventID(s.id))
			}
			if s.entity != "" {
				m.PutStr(unifiedevent.KeyEntityID, s.entity)
			}
		}
		_ = putAll(m, s.attrs)
	}
	return td
}

// gaugeOf makes one gauge data point of metric name on a resource of entity, at offset at.
func gaugeOf(name, entity string, at time.Duration, value float64, attrs map[string]any, exemplarTraces ...pcommon.TraceID) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(unifiedevent.KeyK8sPodUID, entity)
	rm.Resource().Attributes().PutStr(unifiedevent.KeyEntityID, entity)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(scenarioStart.Add(at)))
	dp.SetDoubleValue(value)
	_ = putAll(dp.Attributes(), attrs)
	for _, t := range exemplarTraces {
		x := dp.Exemplars().AppendEmpty()
		x.SetTraceID(t)
		x.SetDoubleValue(value)
	}
	return md
}

func pcommonTime(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }
