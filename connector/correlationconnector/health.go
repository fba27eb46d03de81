package correlationconnector

import (
	"strings"
	"sync"
)

// healthLedger remembers when healthy traffic last reached a peer address, a workload or a
// service: a CLIENT span that succeeded against an address (and the entity the directory says
// serves it), a SERVER span that succeeded. Evidence bound through a key before the key was seen
// healthy again has recovered, and cannot explain a later failure there (IncidentPolicy.
// RecoveryDelay). The ledger is bounded: past its cap the stalest of a few entries goes, counted.
type healthLedger struct {
	mu      sync.RWMutex
	healthy map[linkKey]int64 // key → time of the latest healthy observation
	max     int
	window  int64
}

// healthObservation is one key seen healthy at a time, collected per batch.
type healthObservation struct {
	key linkKey
	at  int64
}

func newHealthLedger(maxKeys int, window int64) *healthLedger {
	return &healthLedger{healthy: map[linkKey]int64{}, max: maxKeys, window: window}
}

// record takes a batch's observations; it returns how many entries it evicted to stay in its cap.
func (h *healthLedger) record(obs []healthObservation) (evicted int) {
	if len(obs) == 0 {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range obs {
		if at, ok := h.healthy[o.key]; ok {
			h.healthy[o.key] = max(at, o.at)
			continue
		}
		if len(h.healthy) >= h.max {
			evicted += evictStalest(h.healthy)
		}
		k := o.key
		k.name, k.scope = strings.Clone(k.name), strings.Clone(k.scope) // they point into the observation's pdata batch
		h.healthy[k] = o.at
	}
	return evicted
}

// lastHealthy returns when k was last seen healthy, 0 for never.
func (h *healthLedger) lastHealthy(k linkKey) int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.healthy[k]
}

// expire forgets keys not seen healthy within the window: no binding that old can be joined.
func (h *healthLedger) expire(now int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, at := range h.healthy {
		if now-at > h.window {
			delete(h.healthy, k)
		}
	}
}

// evictStalest forgets the stalest of a few entries of a map of last-seen times: map order is
// random enough to spread the choice. It returns 1, the count evicted.
func evictStalest[K comparable](m map[K]int64) int {
	var victim K
	oldest, looked := int64(1<<63-1), 0
	for k, at := range m {
		if at < oldest {
			victim, oldest = k, at
		}
		if looked++; looked == 8 {
			break
		}
	}
	delete(m, victim)
	return 1
}
