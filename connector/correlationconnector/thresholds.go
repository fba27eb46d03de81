package correlationconnector

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// maxExemplarTraces bounds the traces one breach links to.
const maxExemplarTraces = 16

// thresholdEvaluator turns data points that breach a rule for long enough into problem events. It
// remembers, per rule and series, when the breach began and whether it has fired.
type thresholdEvaluator struct {
	rules    []ThresholdRule
	byMetric map[string][]int
	max      int

	mu     sync.Mutex
	series map[seriesKey]*seriesState
}

type seriesKey struct {
	rule   int
	entity string
	attrs  string
}

type seriesState struct {
	since     int64 // when the current breach began; 0 when not breaching
	fired     bool
	lastSeen  int64
	exemplars []pcommon.TraceID
}

func newThresholdEvaluator(rules []ThresholdRule, maxSeries int) *thresholdEvaluator {
	t := &thresholdEvaluator{rules: rules, byMetric: map[string][]int{}, max: maxSeries, series: map[seriesKey]*seriesState{}}
	for i, r := range rules {
		t.byMetric[r.Metric] = append(t.byMetric[r.Metric], i)
	}
	return t
}

func (c *correlator) consumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	now := c.clock.Now().UnixNano()
	b := c.getBatch()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := readResource(rm.Resource().Attributes(), c.localHost)
		c.registerPodIP(&b.tally, &res, now)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				rules := c.thresholds.byMetric[m.Name()]
				if len(rules) == 0 {
					continue
				}
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				default:
					continue
				}
				for d := 0; d < dps.Len(); d++ {
					for _, r := range rules {
						c.evaluate(b, r, &res, dps.At(d), now)
					}
				}
			}
		}
	}
	return c.commit(ctx, b, now)
}

func (c *correlator) evaluate(b *batch, ruleIndex int, res *resourceFacts, dp pmetric.NumberDataPoint, now int64) {
	t := c.thresholds
	rule := &t.rules[ruleIndex]
	for k, want := range rule.Attributes {
		v, ok := dp.Attributes().Get(k)
		if !ok {
			v, ok = res.attrs.Get(k)
		}
		if !ok || v.AsString() != want {
			return
		}
	}
	var value float64
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		value = float64(dp.IntValue())
	case pmetric.NumberDataPointValueTypeDouble:
		value = dp.DoubleValue()
	default:
		return
	}
	ts := int64(dp.Timestamp())
	if ts == 0 {
		ts = now
	}
	if ts < now-c.window {
		b.tally.late++
		return
	}
	key := seriesKey{rule: ruleIndex, entity: res.resourceEntity(), attrs: attributeKey(dp.Attributes())}

	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.series[key]
	if !ok {
		if len(t.series) >= t.max {
			t.evictStalest()
			b.tally.evicted[evictMetricSeries]++
		}
		key.entity = strings.Clone(key.entity)
		st = &seriesState{}
		t.series[key] = st
	}
	st.lastSeen = now
	if !breaches(rule.Comparison, value, rule.Value) {
		st.since, st.fired, st.exemplars = 0, false, st.exemplars[:0]
		return
	}
	if st.since == 0 || ts < st.since {
		st.since = ts
	}
	exemplars := dp.Exemplars()
	for x := 0; x < exemplars.Len() && len(st.exemplars) < maxExemplarTraces; x++ {
		if id := exemplars.At(x).TraceID(); !id.IsEmpty() && !slices.Contains(st.exemplars, id) {
			st.exemplars = append(st.exemplars, id)
		}
	}
	if st.fired || ts-st.since < int64(rule.For) {
		return
	}
	st.fired = true
	layer, _ := unifiedevent.ParseLayer(rule.Layer)
	e := c.appendProblem(b)
	e.time = ts
	e.name, e.layer = unifiedevent.MetricThresholdBreach, layer
	e.breach = &breachFacts{rule: ruleIndex, value: value, exemplars: slices.Clone(st.exemplars)}
	e.class |= classConsequence
	e.entity = res.resourceEntity()
	e.service = res.service
	e.podNamespace, e.podName = res.podNamespace, res.podName
	e.narrative = breachNarrative(rule, value, time.Duration(ts-st.since), e.entity)
	b.tally.breaches[ruleIndex]++
	b.tally.accepted[acceptBreach]++
}

func (t *thresholdEvaluator) evictStalest() {
	var victim seriesKey
	oldest, looked := int64(1<<63-1), 0
	for k, st := range t.series {
		if st.lastSeen < oldest {
			victim, oldest = k, st.lastSeen
		}
		if looked++; looked == 8 {
			break
		}
	}
	delete(t.series, victim)
}

// expire forgets series not reported for a window.
func (t *thresholdEvaluator) expire(now, window int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, st := range t.series {
		if now-st.lastSeen > window {
			delete(t.series, k)
		}
	}
}

func breaches(cmp Comparison, value, threshold float64) bool {
	switch cmp {
	case GreaterThan:
		return value > threshold
	case GreaterOrEqual:
		return value >= threshold
	case LessThan:
		return value < threshold
	case LessOrEqual:
		return value <= threshold
	}
	return false
}

var comparisonSymbols = map[Comparison]string{GreaterThan: ">", GreaterOrEqual: "≥", LessThan: "<", LessOrEqual: "≤"}

func breachNarrative(rule *ThresholdRule, value float64, lasted time.Duration, entity string) string {
	var b strings.Builder
	b.WriteString(rule.Metric)
	b.WriteString(" was ")
	b.WriteString(strconv.FormatFloat(value, 'g', 6, 64))
	b.WriteString(" (")
	b.WriteString(comparisonSymbols[rule.Comparison])
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(rule.Value, 'g', 6, 64))
	b.WriteString(") for ")
	b.WriteString(lasted.String())
	if entity != "" {
		b.WriteString(" on ")
		b.WriteString(entity)
	}
	b.WriteString(": threshold rule ")
	b.WriteString(rule.Name)
	return b.String()
}

// attributeKey is a canonical rendering of a data point's attributes, identifying its series.
func attributeKey(m pcommon.Map) string {
	if m.Len() == 0 {
		return ""
	}
	keys := make([]string, 0, m.Len())
	m.Range(func(k string, _ pcommon.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		v, _ := m.Get(k)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v.AsString())
		b.WriteByte(0)
	}
	return b.String()
}
