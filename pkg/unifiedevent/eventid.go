package unifiedevent

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// NewEventID returns a fresh event id: 16 random bytes as 32 lower-case hex digits. The
// runtime's ChaCha8 generator behind math/rand/v2 is seeded from the OS, lock-free per thread and
// does not allocate, which matters because every event gets one.
func NewEventID() string {
	var raw [16]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		raw[i] = byte(a >> (8 * i))
		raw[8+i] = byte(b >> (8 * i))
	}
	var text [32]byte
	hex.Encode(text[:], raw[:])
	return string(text[:])
}

// EventIDs hands out fresh event ids, made a block at a time: one string holds a block's ids and
// each id is a slice of it, so a producer writing an event per record allocates once per block
// rather than once per event. The zero value is ready; it is not safe for concurrent use.
type EventIDs struct {
	block string
	next  int
}

// eventIDBlock is how many ids one allocation holds: 2 KiB of text.
const eventIDBlock = 64

// Next returns a fresh event id, as NewEventID does.
func (g *EventIDs) Next() string {
	if g.next == len(g.block) {
		var text [eventIDBlock * 32]byte
		var raw [16]byte
		for i := 0; i < eventIDBlock; i++ {
			a, b := rand.Uint64(), rand.Uint64()
			for j := 0; j < 8; j++ {
				raw[j] = byte(a >> (8 * j))
				raw[8+j] = byte(b >> (8 * j))
			}
			hex.Encode(text[i*32:], raw[:])
		}
		g.block, g.next = string(text[:]), 0
	}
	id := g.block[g.next : g.next+32]
	g.next += 32
	return id
}

// ValidEventID reports whether s has the shape of an event id.
func ValidEventID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// SpanEventID is the event id of a failed or slow span, derived from its trace and span ids: a
// span has one event id wherever it is read — written in full annotation, or computed by the
// reader where minimal annotation leaves it out — and a retried export of the span brings the
// same id rather than a second one. The span id goes through a bijective mixer (splitmix64's
// finalizer) before it is folded into each half of the trace id, so two spans of one trace never
// share an id, and the id shows none of the trace id's bytes. A span without a trace id has no
// such id (false): its producer writes a fresh one.
func SpanEventID(trace pcommon.TraceID, span pcommon.SpanID) ([16]byte, bool) {
	var id [16]byte
	if trace.IsEmpty() {
		return id, false
	}
	s := binary.BigEndian.Uint64(span[:])
	binary.BigEndian.PutUint64(id[:8], binary.BigEndian.Uint64(trace[:8])^mix64(s))
	binary.BigEndian.PutUint64(id[8:], binary.BigEndian.Uint64(trace[8:])^mix64(s^0x9e3779b97f4a7c15))
	return id, true
}

// SpanEventIDString is SpanEventID as tapio.event.id writes it, or "" for a span without a trace
// id.
func SpanEventIDString(trace pcommon.TraceID, span pcommon.SpanID) string {
	id, ok := SpanEventID(trace, span)
	if !ok {
		return ""
	}
	return hex.EncodeToString(id[:])
}

// mix64 is splitmix64's finalizer: a bijection of uint64 (xor-shifts and multiplications by odd
// constants are each invertible) that spreads every input bit over the output.
func mix64(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
