package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/yairfalse/tapio/pkg/impactapi"
)

// renderIncident prints the 3 AM summary of one incident.
func renderIncident(w io.Writer, inc *impactapi.Incident, everyEvent bool) {
	fmt.Fprintf(w, "INCIDENT %s (version %d)  %s, score %.2f\n", inc.ID, inc.Version, inc.Severity, inc.Score)
	if inc.Summary != "" {
		fmt.Fprintf(w, "%s\n", inc.Summary)
	}

	fmt.Fprintf(w, "\nROOT CAUSE\n")
	rc := inc.RootCause
	fmt.Fprintf(w, "  %s\n", orDash(rc.Narrative))
	fmt.Fprintf(w, "  event %s on %s", orDash(rc.EventName), orDash(rc.EntityID))
	if inc.Confidence != nil {
		fmt.Fprintf(w, ", confidence %.2f", *inc.Confidence)
	}
	fmt.Fprintln(w)

	im := inc.Impact
	fmt.Fprintf(w, "\nBUSINESS IMPACT\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  Severity:\t%s (score %.2f)\n", inc.Severity, inc.Score)
	if im.RevenueAtRisk != nil {
		fmt.Fprintf(tw, "  Revenue at risk:\t%s %s\t%s\n", amount(im.RevenueAtRisk.Amount), im.RevenueAtRisk.Currency, im.RevenueAtRisk.Source)
	}
	if im.FailedTransactions != nil {
		fmt.Fprintf(tw, "  Failed transactions:\t%d\t%s\n", im.FailedTransactions.Count, im.FailedTransactions.Source)
	}
	if im.FailedRequests != nil {
		fmt.Fprintf(tw, "  Failed requests:\t%d\t%s\n", im.FailedRequests.Count, im.FailedRequests.Source)
	}
	if cf := im.CustomerFacing; cf != nil {
		fmt.Fprintf(tw, "  Customer-facing:\t%s\t%s\n", yesNo(cf.Value), cf.Source)
	}
	for _, b := range im.SLOBurn {
		fmt.Fprintf(tw, "  SLO burn:\t%s of the error budget\t%s\n", percent(b.BudgetConsumed), b.Source)
	}
	if c := im.Cascade; c != nil {
		fmt.Fprintf(tw, "  Cascade risk:\t%s\t%s\n", c.Level, c.Source)
	}
	for _, u := range im.Unavailable {
		if u.Figure == "affected_users" {
			continue // said under AFFECTED USERS
		}
		fmt.Fprintf(tw, "  %s:\tnot computed\t%s\n", figureTitle(u.Figure), u.Reason)
	}
	_ = tw.Flush()
	if len(im.ScoreFactors) > 0 {
		fmt.Fprintf(w, "  Score from:")
		for i, f := range im.ScoreFactors {
			sep := ","
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(w, "%s %s +%.2f", sep, f.Factor, f.Contribution)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "\nAFFECTED USERS\n")
	if u := im.AffectedUsers; u != nil {
		keys := slices.Sorted(maps.Keys(u.ByKey))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s: %d", k, u.ByKey[k])
		}
		fmt.Fprintf(w, "  %d (%s)\n", u.Count, strings.Join(parts, ", "))
	} else {
		reason := "unknown"
		for _, x := range im.Unavailable {
			if x.Figure == "affected_users" {
				reason = "unknown: " + x.Reason
			}
		}
		fmt.Fprintf(w, "  %s\n", reason)
	}

	fmt.Fprintf(w, "\nTIME TO DETECTION\n")
	fmt.Fprintf(w, "  %s (first event %s → incident %s)\n",
		duration(inc.TimeToDetectionSeconds), stamp(inc.FirstSeen), stamp(inc.DetectedAt))

	fmt.Fprintf(w, "\nEVENT CHAIN (cause → effect)\n")
	width := len(strconv.Itoa(len(inc.Chain)))
	for i := 0; i < len(inc.Chain); {
		e := inc.Chain[i]
		// Consecutive events of one kind about one subject (a refused connection per request, a
		// failed span per checkout) read as one line with a count, unless --all asks for each.
		n := 1
		for !everyEvent && i+n < len(inc.Chain) && sameKind(e, inc.Chain[i+n]) {
			n++
		}
		head := fmt.Sprintf("  %*d. [%s] %s", width, i+1, e.Layer, e.EventName)
		if e.Service != "" {
			head += " · " + e.Service
		} else if e.EntityID != "" {
			head += " · " + e.EntityID
		}
		head += "  " + clock(e.Time)
		if n > 1 {
			head += " … " + clock(inc.Chain[i+n-1].Time) + fmt.Sprintf("  ×%d", n)
		}
		if e.Link.Reason != "" && e.Link.Reason != "root" {
			head += "  (link: " + e.Link.Reason + ")"
		}
		fmt.Fprintln(w, head)
		fmt.Fprintf(w, "  %*s  %s\n", width, "", e.Narrative)
		i += n
	}

	fmt.Fprintf(w, "\nRECOMMENDED ACTIONS\n")
	if len(inc.Recommendations) == 0 {
		fmt.Fprintln(w, "  none recorded")
	}
	for _, r := range inc.Recommendations {
		fmt.Fprintf(w, "  %-11s %s\n", horizonTitle(r.Horizon)+":", r.Action)
	}
}

// renderTable prints incidents as a table.
// sameKind reports whether two chain entries are the same kind of event about the same subject,
// linked the same way.
func sameKind(a, b impactapi.ChainEntry) bool {
	return a.EventName == b.EventName && a.Service == b.Service && a.EntityID == b.EntityID && a.Link.Reason == b.Link.Reason
}

func renderTable(w io.Writer, incs []impactapi.Incident) {
	if len(incs) == 0 {
		fmt.Fprintln(w, "No incidents.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIRST SEEN\tSEVERITY\tSCORE\tREVENUE AT RISK\tUSERS\tID\tSERVICES\tROOT CAUSE")
	for i := range incs {
		inc := &incs[i]
		revenue, users := "-", "-"
		if r := inc.Impact.RevenueAtRisk; r != nil {
			revenue = amount(r.Amount) + " " + r.Currency
		}
		if u := inc.Impact.AffectedUsers; u != nil {
			users = strconv.FormatInt(u.Count, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\n", stamp(inc.FirstSeen), inc.Severity, inc.Score,
			revenue, users, inc.ID, strings.Join(inc.Services, ","), truncate(inc.RootCause.Narrative, 60))
	}
	_ = tw.Flush()
}

func streamLine(ev impactapi.StreamEvent) string {
	inc := &ev.Incident
	return fmt.Sprintf("%s %-7s %-8s %.2f %s v%d: %s", stamp(inc.UpdatedAt), ev.Type, inc.Severity, inc.Score,
		inc.ID, inc.Version, truncate(inc.RootCause.Narrative, 100))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func amount(v float64) string {
	v = math.Round(v*100) / 100
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func percent(f float64) string {
	return strconv.FormatFloat(math.Round(f*100*1000)/1000, 'f', -1, 64) + "%"
}

func duration(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05.000")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func horizonTitle(h string) string {
	switch h {
	case impactapi.HorizonImmediate:
		return "Immediate"
	case impactapi.HorizonShortTerm:
		return "Short-term"
	case impactapi.HorizonLongTerm:
		return "Long-term"
	}
	return h
}

func figureTitle(f string) string {
	switch f {
	case "customer_facing":
		return "Customer-facing"
	case "failed_transactions":
		return "Failed transactions"
	case "failed_requests":
		return "Failed requests"
	case "revenue_at_risk":
		return "Revenue at risk"
	case "slo_burn":
		return "SLO burn"
	case "cascade":
		return "Cascade risk"
	}
	return f
}
