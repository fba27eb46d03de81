package impactapi

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSeverityText(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Severity
		err  string
	}{
		{in: "LOW", want: SeverityLow},
		{in: "medium", want: SeverityMedium},
		{in: "High", want: SeverityHigh},
		{in: "CRITICAL", want: SeverityCritical},
		{in: "urgent", err: `severity "urgent" is not one of LOW, MEDIUM, HIGH, CRITICAL`},
		{in: "", err: `severity "" is not one of LOW, MEDIUM, HIGH, CRITICAL`},
		{in: "HIGH ", err: `severity "HIGH " is not one of`},
	} {
		var got Severity
		err := got.UnmarshalText([]byte(tt.in))
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("UnmarshalText(%q) = %v, want an error containing %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("UnmarshalText(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSeverityOrder(t *testing.T) {
	all := Severities()
	for i, s := range all {
		if s.Rank() != i+1 {
			t.Errorf("%s ranks %d, want %d", s, s.Rank(), i+1)
		}
		for j, min := range all {
			if s.AtLeast(min) != (i >= j) {
				t.Errorf("%s.AtLeast(%s) = %v", s, min, s.AtLeast(min))
			}
		}
	}
	if Severity("").AtLeast(SeverityLow) || Severity("urgent").Rank() != 0 {
		t.Error("a value that is not a severity ranks")
	}
}

func TestSeverityJSON(t *testing.T) {
	b, err := json.Marshal(struct{ S Severity }{SeverityHigh})
	if err != nil || string(b) != `{"S":"HIGH"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	if _, err := json.Marshal(struct{ S Severity }{}); err == nil {
		t.Fatal("an empty severity was written")
	}
	var v struct{ S Severity }
	if err := json.Unmarshal([]byte(`{"S":"critical"}`), &v); err != nil || v.S != SeverityCritical {
		t.Fatalf("Unmarshal = %q, %v", v.S, err)
	}
	if err := json.Unmarshal([]byte(`{"S":"urgent"}`), &v); err == nil {
		t.Fatal("an unknown severity was read")
	}
	if err := json.Unmarshal([]byte(`{"S":3}`), &v); err == nil {
		t.Fatal("a number was read as a severity")
	}
}
