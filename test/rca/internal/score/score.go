// Package score compares what the harness did and saw with what Tapio said: for every injected
// fault, was its root cause the incident's root cause (top-1) or among its first three chain
// entries (top-3), are the failed requests and the fault in one incident, are the incident's
// figures the load generator's, and which incidents nothing injected explains.
package score

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/yairfalse/tapio/test/rca/internal/load"
	"github.com/yairfalse/tapio/test/rca/internal/tapio"
)

// Expectation is one injected fault and what the harness knows about it — all of it read from
// the injection itself (the pid it killed, the signal, the sender, the port, the device).
type Expectation struct {
	// Fault says in words what was done, e.g. "OOM kill of postgres backend (pid 4242)".
	Fault string
	// EventNames are the event names the root cause may have.
	EventNames []string
	// Facts must all be named by the root cause (its narrative, entity or peer); each fact is a
	// list of alternatives, e.g. {"(pid 4242)"} or {":6379", "redis"}.
	Facts [][]string
	// SpanKind, when set, is the span kind the root cause must have (a slow CLIENT span).
	SpanKind string `json:",omitempty"`
	// Services are the services whose requests the fault hurts.
	Services []string
	// Related tie an incident to this fault: the pids of the faulted server's processes, its
	// port, its device. An incident naming one of them is explained by the fault.
	Related []string
	// RelatedLater adds to Related once the run is over: processes a server starts after the
	// fault (a recovering PostgreSQL's new backends) are the fault's too.
	RelatedLater func() []string `json:"-"`
	// At is when the fault was injected.
	At time.Time
	// Slow: the fault makes requests slow, not failed; the affected requests are those slower
	// than SlowThreshold.
	Slow bool
}

// SlowThreshold is the shipped unifiedevent processor's spans.slow_threshold.
const SlowThreshold = 2 * time.Second

// Want renders the expected root cause for the table.
func (e Expectation) Want() string {
	names := make([]string, len(e.EventNames))
	for i, n := range e.EventNames {
		names[i] = shortName(n)
	}
	var facts []string
	for _, f := range e.Facts {
		facts = append(facts, strings.Join(f, "|"))
	}
	want := strings.Join(names, "|")
	if e.SpanKind != "" {
		want += " " + e.SpanKind
	}
	return want + " " + strings.Join(facts, " ")
}

// Run is what one run of a scenario produced.
type Run struct {
	Scenario string
	Index    int
	// Noise runs inject no fault: every incident is a false one.
	Noise        bool
	Expectations []Expectation
	Outcomes     []load.Outcome
	// Incidents are the incidents stored once the collector stopped (it emits what it held);
	// Served those the API served while the run went on.
	Incidents []tapio.Incident
	Served    []tapio.Incident
	// Ours reports whether the suite started process pid (nil: every process is the suite's).
	Ours func(pid int) bool `json:"-"`
	// Err is set when the harness could not play the scenario; the run scores as a miss.
	Err error
	// Notes are what the harness saw worth telling (e.g. requests that got no answer).
	Notes []string
}

// Row is one line of the table: one expectation of one run (or the whole of a noise run).
type Row struct {
	Scenario string
	Run      int
	Want     string
	Got      string
	Top1     bool
	Top3     bool
	ChainOK  bool
	Figures  string
	// FiguresExact: affected users and failed requests equal the load generator's.
	FiguresExact bool
	// Incidents is how many incidents the run stored; False how many nothing injected explains
	// (both on the first row of a run).
	Incidents int
	False     int
	// Elsewhere counts, of the false incidents, those about processes the suite did not start
	// (other work on a shared machine); they are false incidents all the same.
	Elsewhere int
	Seconds   string
	Scored    bool // an expectation (not a noise row)
	Note      string
}

// Score turns a run into its rows.
func Score(r Run) []Row {
	if !r.Noise && len(r.Expectations) == 0 {
		// The fault was not injected (or not as planned): a miss, with the harness's reason.
		note := "the harness injected no fault"
		if r.Err != nil {
			note = "harness: " + r.Err.Error()
		}
		return []Row{{Scenario: r.Scenario, Run: r.Index, Want: "(no fault injected)", Got: "-", Scored: true,
			Figures: "-", Seconds: "-", Incidents: len(r.Incidents), Note: note}}
	}
	if r.Noise {
		row := Row{Scenario: r.Scenario, Run: r.Index, Want: "no incident", Incidents: len(r.Incidents), False: len(r.Incidents),
			Got: gotList(r.Incidents), Figures: "-", Seconds: "-"}
		for i := range r.Incidents {
			if elsewhere(&r.Incidents[i], r) {
				row.Elsewhere++
			}
		}
		failed := 0
		for _, o := range r.Outcomes {
			if o.Failed() {
				failed++
			}
		}
		notes := append([]string(nil), r.Notes...)
		if failed > 0 {
			notes = append(notes, fmt.Sprintf("%d requests failed in a noise run", failed))
		}
		if r.Err != nil {
			notes = append(notes, "harness: "+r.Err.Error())
		}
		row.Note = strings.Join(notes, "; ")
		return []Row{row}
	}
	explained := make([]bool, len(r.Incidents))
	var rows []Row
	for _, e := range r.Expectations {
		affected := affectedRequests(r.Outcomes, e)
		for i := range r.Incidents {
			if explains(&r.Incidents[i], e, affected) {
				explained[i] = true
			}
		}
		row := Row{Scenario: r.Scenario, Run: r.Index, Want: e.Want(), Scored: true, Seconds: "-", Figures: "-", Got: "no incident"}
		inc := pick(r.Incidents, e, affected)
		if inc != nil {
			row.Got = got(inc)
			row.Top1 = matches(rootEntry(inc), e)
			for i := 0; i < len(inc.Chain) && i < 3; i++ {
				row.Top3 = row.Top3 || matches(inc.Chain[i], e)
			}
			row.Top3 = row.Top3 || row.Top1
			row.ChainOK = chainHolds(inc, e, affected)
			row.Figures, row.FiguresExact = figures(inc, e, affected)
			row.Seconds = seconds(inc, r.Served, e)
		}
		var notes []string
		if inc != nil {
			for _, figure := range []string{"affected_users", "failed_transactions"} {
				if _, ok := inc.Count(figure); !ok {
					if reason := inc.Unavailable(figure); reason != "" {
						notes = append(notes, figure+" absent: "+reason)
					}
				}
			}
		}
		if r.Err != nil {
			notes = append(notes, "harness: "+r.Err.Error())
			row.Top1, row.Top3, row.ChainOK, row.FiguresExact = false, false, false, false
		}
		if len(affected.requests) == 0 && r.Err == nil {
			notes = append(notes, "the fault hurt no request")
		}
		if affected.unanswered > 0 {
			notes = append(notes, fmt.Sprintf("%d requests got no answer (no trace to check)", affected.unanswered))
		}
		row.Note = strings.Join(append(notes, r.Notes...), "; ")
		rows = append(rows, row)
	}
	falseCount, elsewhereCount := 0, 0
	for i, ok := range explained {
		if !ok {
			falseCount++
			if elsewhere(&r.Incidents[i], r) {
				elsewhereCount++
			}
		}
	}
	rows[0].Incidents, rows[0].False, rows[0].Elsewhere = len(r.Incidents), falseCount, elsewhereCount
	return rows
}

var narrativePid = regexp.MustCompile(`\(pid (\d+)\)`)

// elsewhere: the incident is only about processes the suite did not start — it names some,
// none of them the suite's, and holds no span of the shop's requests.
func elsewhere(inc *tapio.Incident, r Run) bool {
	if r.Ours == nil {
		return false
	}
	requests := map[string]bool{}
	for _, o := range r.Outcomes {
		if o.TraceID != "" {
			requests[o.TraceID] = true
		}
	}
	named := false
	entries := append([]tapio.ChainEntry{rootEntry(inc)}, inc.Chain...)
	for _, c := range entries {
		if c.Service != "" || requests[c.TraceID] {
			return false
		}
		for _, m := range narrativePid.FindAllStringSubmatch(c.Narrative, -1) {
			pid, _ := strconv.Atoi(m[1])
			if r.Ours(pid) {
				return false
			}
			named = true
		}
	}
	return named
}

// affected is the requests a fault hurt, as the load generator saw them.
type affected struct {
	requests   []load.Outcome // answered, with a trace id
	traces     map[string]bool
	users      map[string]bool
	failed     int // of requests, those that failed (a slow fault's requests need not)
	unanswered int // failed with no answer at all
}

func affectedRequests(outcomes []load.Outcome, e Expectation) affected {
	a := affected{traces: map[string]bool{}, users: map[string]bool{}}
	services := map[string]bool{}
	for _, s := range e.Services {
		services[s] = true
	}
	for _, o := range outcomes {
		if !services[o.Service] {
			continue
		}
		hurt := o.Failed()
		if e.Slow {
			hurt = o.Duration > SlowThreshold
		}
		if !hurt {
			continue
		}
		if o.TraceID == "" {
			if o.Failed() {
				a.unanswered++
			}
			continue
		}
		a.requests = append(a.requests, o)
		a.traces[o.TraceID] = true
		a.users[o.User] = true
		if o.Failed() {
			a.failed++
		}
	}
	return a
}

// pick chooses the incident that is this fault's answer: the one holding most of the hurt
// requests' traces; without any, one whose chain names the fault.
func pick(incidents []tapio.Incident, e Expectation, a affected) *tapio.Incident {
	var best *tapio.Incident
	bestTraces, bestNamesFault := 0, false
	for i := range incidents {
		inc := &incidents[i]
		n := 0
		for _, t := range inc.TraceIDs {
			if a.traces[t] {
				n++
			}
		}
		namesFault := false
		for _, c := range inc.Chain {
			namesFault = namesFault || matches(c, e)
		}
		if n > bestTraces || (n == bestTraces && namesFault && !bestNamesFault) {
			best, bestTraces, bestNamesFault = inc, n, namesFault
		}
	}
	if bestTraces == 0 && !bestNamesFault {
		return nil
	}
	return best
}

func rootEntry(inc *tapio.Incident) tapio.ChainEntry {
	c := tapio.ChainEntry{EventName: inc.RootCause.EventName, EntityID: inc.RootCause.EntityID, Narrative: inc.RootCause.Narrative}
	// The root cause is the chain's first entry; its peer and span kind are only there.
	if len(inc.Chain) > 0 && inc.Chain[0].Narrative == c.Narrative {
		c.Peer, c.SpanKind = inc.Chain[0].Peer, inc.Chain[0].SpanKind
	}
	return c
}

// matches reports whether a chain entry is the expected root cause.
func matches(c tapio.ChainEntry, e Expectation) bool {
	nameOK := false
	for _, n := range e.EventNames {
		nameOK = nameOK || c.EventName == n
	}
	if !nameOK || (e.SpanKind != "" && c.SpanKind != e.SpanKind) {
		return false
	}
	text := c.Narrative + " " + c.EntityID + " " + c.Peer
	for _, fact := range e.Facts {
		found := false
		for _, alt := range fact {
			found = found || containsToken(text, alt)
		}
		if !found {
			return false
		}
	}
	return true
}

// containsToken finds tok in s not followed by a digit, so that "(pid 12" or ":2711" do not
// match "(pid 123)" or ":27110".
func containsToken(s, tok string) bool {
	for from := 0; ; {
		i := strings.Index(s[from:], tok)
		if i < 0 {
			return false
		}
		end := from + i + len(tok)
		if end == len(s) || s[end] < '0' || s[end] > '9' || tok[len(tok)-1] < '0' || tok[len(tok)-1] > '9' {
			return true
		}
		from = end
	}
}

// explains: the incident holds a hurt request's trace or names the fault's process, port or
// device.
func explains(inc *tapio.Incident, e Expectation, a affected) bool {
	for _, t := range inc.TraceIDs {
		if a.traces[t] {
			return true
		}
	}
	entries := append([]tapio.ChainEntry{rootEntry(inc)}, inc.Chain...)
	for _, c := range entries {
		text := c.Narrative + " " + c.EntityID + " " + c.Peer
		for _, tok := range e.Related {
			if containsToken(text, tok) {
				return true
			}
		}
	}
	return false
}

// chainHolds: every hurt request's SERVER span and the fault are in the incident.
func chainHolds(inc *tapio.Incident, e Expectation, a affected) bool {
	if len(a.requests) == 0 {
		return false
	}
	servers := map[string]bool{}
	faultIn := false
	for _, c := range inc.Chain {
		if c.SpanKind == "SERVER" {
			servers[c.TraceID] = true
		}
		faultIn = faultIn || matches(c, e)
	}
	if !faultIn {
		return false
	}
	for t := range a.traces {
		if !servers[t] {
			return false
		}
	}
	return true
}

// figures compares the incident's affected users and failed requests with the load generator's.
// Failed requests are read from failed_requests when the API has that figure, else from
// failed_transactions (every route of the shop is a configured transaction route).
func figures(inc *tapio.Incident, e Expectation, a affected) (string, bool) {
	users, hasUsers := inc.Count("affected_users")
	figure := "failed_requests"
	failed, hasFailed := inc.Count(figure)
	if !hasFailed {
		figure = "failed_transactions"
		failed, hasFailed = inc.Count(figure)
	}
	show := func(v int64, ok bool) string {
		if !ok {
			return "absent"
		}
		return fmt.Sprint(v)
	}
	text := fmt.Sprintf("users %s/%d, failed %s/%d", show(users, hasUsers), len(a.users), show(failed, hasFailed), a.failed)
	usersOK := hasUsers && users == int64(len(a.users))
	failedOK := hasFailed && failed == int64(a.failed) || !hasFailed && a.failed == 0
	return text, usersOK && failedOK
}

func shortName(n string) string {
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		return n[i+1:]
	}
	return n
}

func got(inc *tapio.Incident) string {
	return fmt.Sprintf("%s [%s] %s", shortName(inc.RootCause.EventName), inc.RootCause.EntityID, inc.RootCause.Narrative)
}

func gotList(incidents []tapio.Incident) string {
	if len(incidents) == 0 {
		return "none"
	}
	counts := map[string]int{}
	for i := range incidents {
		counts[shortName(incidents[i].RootCause.EventName)]++
	}
	var parts []string
	for name, n := range counts {
		parts = append(parts, fmt.Sprintf("%d× %s", n, name))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// seconds is how long after the fault the incident's first version was served; an incident the
// collector emitted only when it was stopped was not served during the run: ">N" then gives the
// lower bound.
func seconds(inc *tapio.Incident, served []tapio.Incident, e Expectation) string {
	if e.At.IsZero() {
		return "-"
	}
	for i := range served {
		if served[i].ID == inc.ID {
			return fmt.Sprintf("%.1f", inc.DetectedAt.Sub(e.At).Seconds())
		}
	}
	return fmt.Sprintf(">%.0f (at stop)", inc.DetectedAt.Sub(e.At).Seconds())
}
