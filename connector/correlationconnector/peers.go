package correlationconnector

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// peerKey is an address a client can call: an IP or a name, and a port (0 when any port). A
// loopback or wildcard address means one endpoint per host and network namespace — on a
// Kubernetes node many pods listen on 127.0.0.1:8080 — so its scope names them (localScope);
// the scope of any other address is empty.
type peerKey struct {
	addr  string
	port  int64
	scope string
}

// wildcardAddr stands for every address of a host and namespace in the directory.
const wildcardAddr = "*"

// endpoint is the peer key of addr:port as seen from scope, the host and network namespace
// of the event that named it (localScope).
func endpoint(addr string, port int64, scope string) peerKey {
	if isWildcard(addr) {
		return peerKey{wildcardAddr, port, scope}
	}
	if isLoopback(addr) {
		return peerKey{addr, port, scope}
	}
	return peerKey{addr: addr, port: port}
}

// localScope names a host and network namespace: the host alone for the collector's own
// namespace (every event without tapio.network.namespace, spans included), else host|netns.
func localScope(host string, netns int64) string {
	if netns == 0 {
		return host
	}
	return host + "|" + strconv.FormatInt(netns, 10)
}

// isLoopback reports whether addr is only reachable from its own host and namespace.
func isLoopback(addr string) bool {
	return strings.HasPrefix(addr, "127.") || addr == "::1" || addr == "localhost" || strings.HasPrefix(addr, "::ffff:127.")
}

type peerEntry struct {
	entity string
	via    peerSource
	seen   atomic.Int64
}

// peerDirectory maps the addresses clients call to the entity serving them, learnt from listen
// events, pod IPs and SERVER spans. Reads vastly outnumber writes, and a registration that changes
// nothing only refreshes a timestamp under the read lock.
type peerDirectory struct {
	mu        sync.RWMutex
	entries   map[peerKey]*peerEntry
	listeners map[string]int64 // entities known to listen (from listen events), when last registered
	max       int
	ttl       int64
}

func newPeerDirectory(maxPeers int, ttl int64) *peerDirectory {
	return &peerDirectory{entries: map[peerKey]*peerEntry{}, listeners: map[string]int64{}, max: maxPeers, ttl: ttl}
}

// serves reports whether entity is known to listen: a serving workload.
func (d *peerDirectory) serves(entity string) bool {
	if entity == "" {
		return false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.listeners[entity]
	return ok
}

// register records that entity serves addr:port; it reports how many entries it evicted.
func (d *peerDirectory) register(key peerKey, entity string, via peerSource, now int64) (evicted int) {
	if key.addr == "" || entity == "" {
		return 0
	}
	d.mu.RLock()
	e, ok := d.entries[key]
	if ok && e.entity == entity && via != peerFromListen {
		e.seen.Store(now)
		d.mu.RUnlock()
		return 0
	}
	d.mu.RUnlock()

	d.mu.Lock()
	defer d.mu.Unlock()
	if via == peerFromListen {
		if _, known := d.listeners[entity]; !known && len(d.listeners) >= d.max {
			evicted += evictStalest(d.listeners)
		}
		d.listeners[strings.Clone(entity)] = now
	}
	if _, ok := d.entries[key]; !ok && len(d.entries) >= d.max {
		// Evict the stalest of a few entries: map order is random enough to spread the choice.
		var victim peerKey
		oldest, looked := int64(1<<63-1), 0
		for k, v := range d.entries {
			if s := v.seen.Load(); s < oldest {
				victim, oldest = k, s
			}
			if looked++; looked == 8 {
				break
			}
		}
		delete(d.entries, victim)
		evicted++
	}
	ne := &peerEntry{entity: strings.Clone(entity), via: via}
	ne.seen.Store(now)
	d.entries[peerKey{strings.Clone(key.addr), key.port, strings.Clone(key.scope)}] = ne
	return evicted
}

// resolve returns the entity serving an endpoint: the exact address, then the address on any
// port, then — for a loopback address — whatever listens on every address of that host and
// namespace, then — for a DNS name such as ledger-db.shop.svc.cluster.local — its first label.
func (d *peerDirectory) resolve(key peerKey) (string, peerSource, bool) {
	if key.addr == "" {
		return "", peerUnknown, false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if e, ok := d.entries[key]; ok {
		return e.entity, e.via, true
	}
	if e, ok := d.entries[peerKey{key.addr, 0, key.scope}]; ok {
		return e.entity, e.via, true
	}
	if key.scope != "" {
		if e, ok := d.entries[peerKey{wildcardAddr, key.port, key.scope}]; ok {
			return e.entity, e.via, true
		}
	}
	if label := firstLabel(key.addr); label != key.addr {
		if e, ok := d.entries[peerKey{addr: label, port: key.port}]; ok {
			return e.entity, e.via, true
		}
		if e, ok := d.entries[peerKey{addr: label}]; ok {
			return e.entity, e.via, true
		}
	}
	return "", peerUnknown, false
}

// expire forgets entries not seen for the TTL.
func (d *peerDirectory) expire(now int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, e := range d.entries {
		if now-e.seen.Load() > d.ttl {
			delete(d.entries, k)
		}
	}
	for entity, seen := range d.listeners {
		if now-seen > d.ttl {
			delete(d.listeners, entity)
		}
	}
}

func (d *peerDirectory) len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.entries)
}

// isWildcard reports whether a listening address means every address of the host.
func isWildcard(addr string) bool {
	switch addr {
	case "", "0.0.0.0", "::", "[::]", "*":
		return true
	}
	return false
}

// looksLikeIP tells IP literals from DNS names without parsing (and allocating).
func looksLikeIP(addr string) bool {
	if strings.IndexByte(addr, ':') >= 0 {
		return true
	}
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return addr != ""
}

// firstLabel returns the first DNS label of a name (the Kubernetes service of a cluster DNS name),
// or addr itself for IPs and single labels.
func firstLabel(addr string) string {
	if looksLikeIP(addr) {
		return addr
	}
	if i := strings.IndexByte(addr, '.'); i > 0 {
		return addr[:i]
	}
	return addr
}
