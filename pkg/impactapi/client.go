package impactapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultEndpoint is where the impact exporter serves the API unless configured otherwise.
const DefaultEndpoint = "http://127.0.0.1:8765"

// Client reads the impact exporter's API.
type Client struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:8765.
	Endpoint string
	// Token, when set, is sent as a bearer token (the bearertokenauth extension).
	Token string
	// HTTP is the client used; http.DefaultClient when nil.
	HTTP *http.Client
}

// UnreachableError means the API could not be reached at all.
type UnreachableError struct {
	Endpoint string
	Err      error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Tapio collector at %s: %v", e.Endpoint, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// StatusError is an answer other than 200, with the API's reason.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("the API answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("the API answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Reason)
}

// IsNotFound reports whether err is a 404 from the API.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// IsUnauthorized reports whether the API refused the credentials.
func IsUnauthorized(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden)
}

// Query filters GET /api/v1/incidents. Zero fields are not sent.
type Query struct {
	TraceID  string
	Service  string
	Severity string
	// Since is an RFC 3339 time or a duration ago such as 15m.
	Since string
	Limit int
}

func (q Query) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("trace_id", q.TraceID)
	set("service", q.Service)
	set("severity", q.Severity)
	set("since", q.Since)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) do(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	u := strings.TrimSuffix(c.Endpoint, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{Endpoint: c.Endpoint, Err: unwrapURLError(err)}
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var apiErr Error
		reason := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &apiErr) == nil && apiErr.Error != "" {
			reason = apiErr.Error
		}
		return nil, &StatusError{Code: resp.StatusCode, Reason: reason}
	}
	return resp, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	resp, err := c.do(ctx, path, query)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the answer of %s: %w", path, err)
	}
	return nil
}

// Incidents lists incidents, newest first.
func (c *Client) Incidents(ctx context.Context, q Query) (IncidentList, error) {
	var list IncidentList
	err := c.getJSON(ctx, "/api/v1/incidents", q.values(), &list)
	return list, err
}

// Incident returns one incident; IsNotFound(err) when there is none with that id.
func (c *Client) Incident(ctx context.Context, id string) (Incident, error) {
	var inc Incident
	err := c.getJSON(ctx, "/api/v1/incidents/"+url.PathEscape(id), nil, &inc)
	return inc, err
}

// Health checks the API.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.getJSON(ctx, "/healthz", nil, &h)
	return h, err
}

// Stream calls fn for every server-sent event until ctx ends, the server closes the stream, or
// fn returns an error. raw is the event's JSON data as sent.
func (c *Client) Stream(ctx context.Context, fn func(ev StreamEvent, raw []byte) error) error {
	resp, err := c.do(ctx, "/api/v1/stream", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var data []byte
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if field, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			data = append(data, field...)
			continue
		}
		if len(line) > 0 || len(data) == 0 {
			continue // another field (id, event, a comment), or a blank line without data
		}
		// A blank line ends the event.
		var ev StreamEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("reading a stream event: %w", err)
		}
		if err := fn(ev, data); err != nil {
			return err
		}
		data = nil
	}
}

// WithTimeout returns a client whose requests (not streams) give up after d.
func (c Client) WithTimeout(d time.Duration) *Client {
	hc := *c.httpClient()
	hc.Timeout = d
	c.HTTP = &hc
	return &c
}
