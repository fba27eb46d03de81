package unifiedevent

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The fast switch and the table must say the same thing of every key.
func TestConventionOfFollowsTheTable(t *testing.T) {
	seen := 0
	for _, c := range Conventions {
		for pref, key := range c.Keys {
			fact, got := ConventionOf(key)
			if fact != c.Fact || got != pref {
				t.Errorf("ConventionOf(%q) = %v, %d; the table says %v, %d", key, fact, got, c.Fact, pref)
			}
			seen++
		}
	}
	for _, key := range []string{KeyEventName, "http.url", "net.host.name"} {
		if fact, _ := ConventionOf(key); fact != FactNone {
			t.Errorf("ConventionOf(%q) = %v, want none", key, fact)
		}
	}
	if seen < 15 {
		t.Fatalf("only %d keys in the table", seen)
	}
}

func TestReadCallFactsPrefersTheCurrentName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs map[string]any
		want  CallFacts
	}{
		{"old names only (JS auto-instrumentation defaults)", map[string]any{
			"net.peer.name": "db.internal", "net.peer.port": int64(5432), "db.system": "postgresql", "http.status_code": int64(503)},
			CallFacts{PeerAddress: "db.internal", PeerPort: 5432, DBSystem: "postgresql", HTTPStatus: 503}},
		{"both: the current name wins whatever the order", map[string]any{
			"net.sock.peer.addr": "10.0.0.9", "server.address": "db.internal", "network.peer.address": "10.0.0.7",
			"server.port": "5432", "db.system.name": "postgresql", "db.system": "other", "http.response.status_code": int64(500), "http.status_code": int64(200)},
			CallFacts{PeerAddress: "db.internal", PeerPort: 5432, DBSystem: "postgresql", HTTPStatus: 500}},
		{"sockets only", map[string]any{"network.peer.address": "10.0.0.7", "network.peer.port": int64(6379)},
			CallFacts{PeerAddress: "10.0.0.7", PeerPort: 6379}},
		{"an empty or ill-typed value is no fact", map[string]any{"server.address": "", "net.peer.name": "cache", "server.port": true},
			CallFacts{PeerAddress: "cache"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := pcommon.NewMap()
			if err := m.FromRaw(tc.attrs); err != nil {
				t.Fatal(err)
			}
			got := ReadCallFacts(m)
			got.rank = [factCount]uint8{}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
