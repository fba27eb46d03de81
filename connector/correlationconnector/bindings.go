package correlationconnector

import (
	"iter"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// bindingTable maps link keys to the incident they lead to. Trace keys live in a map of their own,
// keyed by the trace id: every event looks its trace up, nearly always in vain in a storm of new
// traces, and hashing 16 bytes costs less than half of hashing a whole key, strings and all.
type bindingTable struct {
	traces map[pcommon.TraceID]binding
	others map[linkKey]binding
}

func newBindingTable() bindingTable {
	return bindingTable{traces: map[pcommon.TraceID]binding{}, others: map[linkKey]binding{}}
}

func (t *bindingTable) get(k *linkKey) (binding, bool) {
	if k.kind == keyTrace {
		bd, ok := t.traces[k.trace]
		return bd, ok
	}
	bd, ok := t.others[*k]
	return bd, ok
}

func (t *bindingTable) set(k *linkKey, bd binding) {
	if k.kind == keyTrace {
		t.traces[k.trace] = bd
		return
	}
	t.others[*k] = bd
}

func (t *bindingTable) remove(k *linkKey) {
	if k.kind == keyTrace {
		delete(t.traces, k.trace)
		return
	}
	delete(t.others, *k)
}

func (t *bindingTable) len() int { return len(t.traces) + len(t.others) }

// all yields every binding, traces first, in no particular order.
func (t *bindingTable) all() iter.Seq2[linkKey, binding] {
	return func(yield func(linkKey, binding) bool) {
		for id, bd := range t.traces {
			if !yield(linkKey{kind: keyTrace, trace: id}, bd) {
				return
			}
		}
		for k, bd := range t.others {
			if !yield(k, bd) {
				return
			}
		}
	}
}
