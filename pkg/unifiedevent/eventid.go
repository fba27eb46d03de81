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
