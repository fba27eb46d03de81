package unifiedevent

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultMaxNarrativeBytes bounds a narrative so that one huge message cannot bloat every
// downstream copy of the event.
const DefaultMaxNarrativeBytes = 1024

// Truncate cuts s to at most max bytes on a rune boundary, marking the cut with "…".
func Truncate(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// FormatBytes renders a byte count the way people read memory limits: 64 MiB, 1.5 GiB.
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	value := float64(n) / float64(div)
	suffix := string("KMGTPE"[exp]) + "iB"
	if n%div == 0 {
		return strconv.FormatUint(n/div, 10) + " " + suffix
	}
	return strconv.FormatFloat(value, 'f', 1, 64) + " " + suffix
}

// KubernetesNarrative describes a Kubernetes event in one sentence, e.g.
// "Kubernetes Warning BackOff on Pod shop/checkout-7d9: Back-off restarting failed container".
func KubernetesNarrative(eventType, reason, kind, namespace, name, message string, count int64) string {
	var b strings.Builder
	b.Grow(48 + len(eventType) + len(reason) + len(kind) + len(namespace) + len(name) + len(message))
	b.WriteString("Kubernetes ")
	if eventType != "" {
		b.WriteString(eventType)
		b.WriteByte(' ')
	}
	b.WriteString(reason)
	if kind != "" || name != "" {
		b.WriteString(" on ")
		if kind != "" {
			b.WriteString(kind)
			b.WriteByte(' ')
		}
		if namespace != "" {
			b.WriteString(namespace)
			b.WriteByte('/')
		}
		b.WriteString(name)
	}
	if message != "" {
		b.WriteString(": ")
		b.WriteString(strings.TrimSpace(message))
	}
	if count > 1 {
		b.WriteString(" (seen ")
		var digits [20]byte
		b.Write(strconv.AppendInt(digits[:0], count, 10))
		b.WriteString(" times)")
	}
	return b.String()
}

// SpanNarrative describes an annotated span in one sentence, e.g.
// "checkout: SERVER span POST /pay failed with HTTP 500 after 1.2s".
// target names what a CLIENT span called — its database system and address — or is empty.
func SpanNarrative(name Name, service, kind, spanName, target, failure string, took time.Duration) string {
	var b strings.Builder
	if service != "" {
		b.WriteString(service)
		b.WriteString(": ")
	}
	b.WriteString(kind)
	b.WriteString(" span ")
	b.WriteString(spanName)
	if target != "" {
		b.WriteString(" to ")
		b.WriteString(target)
	}
	switch name {
	case SlowSpan:
		b.WriteString(" was slow: ")
		b.WriteString(took.Round(time.Millisecond).String())
		if failure != "" {
			b.WriteString(" (")
			b.WriteString(failure)
			b.WriteByte(')')
		}
	default:
		b.WriteString(" failed")
		if failure != "" {
			b.WriteString(" with ")
			b.WriteString(failure)
		}
		b.WriteString(" after ")
		b.WriteString(took.Round(time.Millisecond).String())
	}
	return b.String()
}
