package unifiedevent_test

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

func TestValueReaders(t *testing.T) {
	m := pcommon.NewMap()
	if err := m.FromRaw(map[string]any{"s": "ledger-db", "empty": "", "i": 4242, "d": 4242.0, "n": "4242", "word": "many", "b": true}); err != nil {
		t.Fatal(err)
	}
	stringCases := []struct {
		key, want string
	}{
		{"s", "ledger-db"}, {"empty", ""}, {"i", ""}, {"b", ""}, {"absent", ""},
	}
	for _, tc := range stringCases {
		if got := unifiedevent.StringAttribute(m, tc.key); got != tc.want {
			t.Errorf("StringAttribute(%s) = %q, want %q", tc.key, got, tc.want)
		}
	}
	intCases := []struct {
		key  string
		want int64
		ok   bool
	}{
		{"i", 4242, true}, {"d", 4242, true}, {"n", 4242, true}, {"word", 0, false}, {"b", 0, false}, {"absent", 0, false},
	}
	for _, tc := range intCases {
		if got, ok := unifiedevent.IntAttribute(m, tc.key); got != tc.want || ok != tc.ok {
			t.Errorf("IntAttribute(%s) = %d, %v; want %d, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

// What a lookup that found nothing hands on (the zero Value, the zero Map of an absent nested
// object) reads as absent instead of panicking.
func TestValueReadersOfAbsentParts(t *testing.T) {
	if got := unifiedevent.StringValue(pcommon.Value{}); got != "" {
		t.Errorf("StringValue(zero) = %q", got)
	}
	if got := unifiedevent.StringAttribute(pcommon.Map{}, "k"); got != "" {
		t.Errorf("StringAttribute(zero map) = %q", got)
	}
	if _, ok := unifiedevent.IntValue(pcommon.Value{}); ok {
		t.Error("IntValue(zero) reads as present")
	}
	if _, ok := unifiedevent.IntAttribute(pcommon.Map{}, "k"); ok {
		t.Error("IntAttribute(zero map) reads as present")
	}
}
