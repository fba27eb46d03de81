package impactapi

import (
	"fmt"
	"strings"
)

// Severity of an incident, from its score: LOW, MEDIUM, HIGH or CRITICAL. It reads and writes
// itself as text, so JSON and the collector's configuration decoder accept only these four names
// (in any case) and say so otherwise. The empty value is no severity and is never written.
type Severity string

const (
	SeverityLow      Severity = "LOW"
	SeverityMedium   Severity = "MEDIUM"
	SeverityHigh     Severity = "HIGH"
	SeverityCritical Severity = "CRITICAL"
)

// Severities lists every severity, least severe first.
func Severities() []Severity {
	return []Severity{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}
}

// Rank orders severities: LOW 1 … CRITICAL 4; 0 for anything else.
func (s Severity) Rank() int {
	switch s {
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return 0
}

// AtLeast reports whether s is a severity at least as severe as min.
func (s Severity) AtLeast(min Severity) bool { return s.Rank() > 0 && s.Rank() >= min.Rank() }

func (s Severity) String() string { return string(s) }

// MarshalText refuses a value that is not one of the four severities.
func (s Severity) MarshalText() ([]byte, error) {
	if s.Rank() == 0 {
		return nil, fmt.Errorf("impactapi: %q is not a severity", string(s))
	}
	return []byte(s), nil
}

// UnmarshalText accepts a severity name in any case.
func (s *Severity) UnmarshalText(text []byte) error {
	v, err := ParseSeverity(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity accepts a severity name in any case.
func ParseSeverity(name string) (Severity, error) {
	for _, s := range Severities() {
		if strings.EqualFold(name, string(s)) {
			return s, nil
		}
	}
	return "", fmt.Errorf("severity %q is not one of LOW, MEDIUM, HIGH, CRITICAL", name)
}
