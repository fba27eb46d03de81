package tapio

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"
)

// Incident is the part of docs/API.md's incident that the suite scores.
type Incident struct {
	ID         string    `json:"id"`
	Version    int64     `json:"version"`
	Summary    string    `json:"summary"`
	Severity   string    `json:"severity"`
	FirstSeen  time.Time `json:"first_seen"`
	DetectedAt time.Time `json:"detected_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	RootCause  struct {
		EventID   string `json:"event_id"`
		EventName string `json:"event_name"`
		EntityID  string `json:"entity_id"`
		Narrative string `json:"narrative"`
	} `json:"root_cause"`
	// Impact is kept raw: figures are looked up by name, and a figure the API adds later (e.g.
	// failed requests) is read without changing this type.
	Impact     map[string]json.RawMessage `json:"impact"`
	TraceIDs   []string                   `json:"trace_ids"`
	Services   []string                   `json:"services"`
	EventCount int64                      `json:"event_count"`
	Chain      []ChainEntry               `json:"chain"`
}

// ChainEntry is one event of an incident's chain.
type ChainEntry struct {
	Time           time.Time `json:"time"`
	Layer          string    `json:"layer"`
	EventName      string    `json:"event_name"`
	EntityID       string    `json:"entity_id"`
	Narrative      string    `json:"narrative"`
	TraceID        string    `json:"trace_id"`
	SpanKind       string    `json:"span_kind"`
	Service        string    `json:"service"`
	HTTPRoute      string    `json:"http_route"`
	HTTPStatusCode int64     `json:"http_status_code"`
	EndUserID      string    `json:"enduser_id"`
	UserID         string    `json:"user_id"`
	Peer           string    `json:"peer"`
	Link           struct {
		Reason string `json:"reason"`
	} `json:"link"`
}

// Count is a figure's count, when the incident has the figure.
func (inc *Incident) Count(figure string) (int64, bool) {
	raw, ok := inc.Impact[figure]
	if !ok {
		return 0, false
	}
	var f struct {
		Count *int64 `json:"count"`
	}
	if json.Unmarshal(raw, &f) != nil || f.Count == nil {
		return 0, false
	}
	return *f.Count, true
}

// Unavailable is the API's reason for a figure it left out, if it gave one.
func (inc *Incident) Unavailable(figure string) string {
	raw, ok := inc.Impact["unavailable"]
	if !ok {
		return ""
	}
	var list []struct{ Figure, Reason string }
	if json.Unmarshal(raw, &list) != nil {
		return ""
	}
	for _, u := range list {
		if u.Figure == figure {
			return u.Reason
		}
	}
	return ""
}

// Client reads the impact API.
type Client struct {
	Base string
}

// Incidents lists every stored incident, oldest first.
func (c *Client) Incidents(ctx context.Context) ([]Incident, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/api/v1/incidents?limit=1000", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer drainAndClose(resp)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET /api/v1/incidents: %s: %s", resp.Status, body)
	}
	var list struct {
		Incidents []Incident `json:"incidents"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("reading the incident list: %w", err)
	}
	sort.Slice(list.Incidents, func(i, j int) bool { return list.Incidents[i].DetectedAt.Before(list.Incidents[j].DetectedAt) })
	return list.Incidents, nil
}

// Settle waits until the stored incidents stop changing: no new incident and no new version for
// quiet, and not before earliest. It gives up at latest and returns what is stored then.
func (c *Client) Settle(ctx context.Context, earliest, latest time.Time, quiet time.Duration) ([]Incident, error) {
	var last string
	lastChange := time.Now()
	for {
		list, err := c.Incidents(ctx)
		if err != nil {
			return nil, err
		}
		sig := ""
		for _, inc := range list {
			sig += fmt.Sprintf("%s/%d;", inc.ID, inc.Version)
		}
		now := time.Now()
		if sig != last {
			last, lastChange = sig, now
		}
		if (now.After(earliest) && now.Sub(lastChange) >= quiet) || now.After(latest) {
			return list, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
