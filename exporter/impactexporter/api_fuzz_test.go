package impactexporter

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzListQuery: whatever a client puts in the query string, parsing answers with a query whose
// filters are well-formed, or with an error — never a panic, never a limit out of range.
func FuzzListQuery(f *testing.F) {
	for _, seed := range []string{
		"", "limit=10", "trace_id=4bf92f3577b34da6a3ce929d0e0e4736", "severity=high&service=checkout",
		"since=15m", "since=2026-11-25T03:00:00Z", "limit=0", "limit=99999999999999999999", "x=1",
		"trace_id=00000000000000000000000000000000", "service=", "since=-5m", "limit=1&limit=2", "%zz",
	} {
		f.Add(seed)
	}
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // net/http answers 400 before the handler
		}
		q, err := parseListQuery(v, now)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error message")
			}
			return
		}
		if q.Limit < 1 || q.Limit > maxListLimit {
			t.Fatalf("limit %d accepted", q.Limit)
		}
		if q.TraceID != "" && (len(q.TraceID) != 32 || q.TraceID != strings.ToLower(q.TraceID)) {
			t.Fatalf("trace id %q accepted", q.TraceID)
		}
		if v.Has("service") && q.Service == "" {
			t.Fatal("an empty service accepted")
		}
	})
}
