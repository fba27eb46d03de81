package unifiedevent

import (
	"encoding/hex"
	"math/rand/v2"
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
