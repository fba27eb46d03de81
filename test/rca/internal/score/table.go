package score

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Summary is the suite's totals.
type Summary struct {
	Cases, Top1, Top3, FiguresExact int
	// False counts incidents nothing injected explains, over every run; NoiseFalse those of
	// noise runs alone.
	False, NoiseFalse int
	// Elsewhere counts the false incidents about processes the suite did not start.
	Elsewhere int
}

// Summarize adds the rows up.
func Summarize(rows []Row) Summary {
	var s Summary
	for _, r := range rows {
		s.False += r.False
		s.Elsewhere += r.Elsewhere
		if !r.Scored {
			s.NoiseFalse += r.False
			continue
		}
		s.Cases++
		if r.Top1 {
			s.Top1++
		}
		if r.Top3 {
			s.Top3++
		}
		if r.FiguresExact {
			s.FiguresExact++
		}
	}
	return s
}

// Line is the suite's one summary line.
func (s Summary) Line() string {
	return fmt.Sprintf("rca: top-1 %d/%d, top-3 %d/%d, false incidents %d, figures exact %d/%d",
		s.Top1, s.Cases, s.Top3, s.Cases, s.False, s.FiguresExact, s.Cases)
}

// PrintTable writes the rows as one aligned table.
func PrintTable(w io.Writer, rows []Row, gotWidth int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\trun\texpected root cause\tgot\ttop-1\ttop-3\tchain\tfigures (incident/load)\tincidents\tfalse (elsewhere)\tfault→incident s\tnote")
	for _, r := range rows {
		incidents, falseN := "", ""
		if r.Incidents > 0 || r.False > 0 || !r.Scored {
			incidents, falseN = fmt.Sprint(r.Incidents), fmt.Sprintf("%d (%d)", r.False, r.Elsewhere)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Scenario, r.Run, r.Want, clip(r.Got, gotWidth), mark(r.Top1, r.Scored), mark(r.Top3, r.Scored),
			mark(r.ChainOK, r.Scored), r.Figures+exactMark(r), incidents, falseN, r.Seconds, r.Note)
	}
	tw.Flush()
}

func mark(ok, scored bool) string {
	switch {
	case !scored:
		return "-"
	case ok:
		return "yes"
	default:
		return "no"
	}
}

func exactMark(r Row) string {
	if !r.Scored {
		return ""
	}
	if r.FiguresExact {
		return " (exact)"
	}
	return ""
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if n <= 0 || len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
