package impactexporter

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/yairfalse/tapio/exporter/impactexporter/internal/metadata"
	"github.com/yairfalse/tapio/pkg/impactapi"
)

const (
	defaultListLimit = 100
	maxListLimit     = 1000
	// streamHeartbeat keeps idle streams alive through proxies and detects gone clients.
	streamHeartbeat = 15 * time.Second
	// streamWriteTimeout bounds one write to a stream client.
	streamWriteTimeout = 10 * time.Second
)

type apiHandler struct {
	store     *store
	broker    *broker
	now       func() time.Time
	telemetry *metadata.TelemetryBuilder
	logger    *zap.Logger
	heartbeat time.Duration
}

func (a *apiHandler) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/incidents", a.counted("/api/v1/incidents", a.listIncidents))
	mux.Handle("GET /api/v1/incidents/{id}", a.counted("/api/v1/incidents/{id}", a.getIncident))
	mux.Handle("GET /api/v1/stream", a.counted("/api/v1/stream", a.stream))
	mux.Handle("GET /healthz", a.counted("/healthz", a.health))
	for _, asset := range webAssets {
		pattern := "GET " + asset.route
		if asset.route == "/" {
			pattern += "{$}" // the page itself, not every path under it
		}
		mux.Handle(pattern, a.counted(asset.route, webAsset(asset.file, asset.contentType)))
	}
	return mux
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and SetWriteDeadline.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (a *apiHandler) counted(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h(rec, req)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		a.telemetry.ExporterImpactAPIRequests.Add(req.Context(), 1, metric.WithAttributes(
			attribute.String("route", route), attribute.String("status_class", strconv.Itoa(status/100)+"xx")))
	})
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(impactapi.Error{Error: fmt.Sprintf(format, args...)})
}

var listParams = map[string]bool{"trace_id": true, "service": true, "severity": true, "since": true, "limit": true}

// parseListQuery reads the filters of GET /api/v1/incidents; the error says what is wrong.
func parseListQuery(v url.Values, now time.Time) (incidentQuery, error) {
	q := incidentQuery{Limit: defaultListLimit}
	for name, vals := range v {
		if !listParams[name] {
			return q, fmt.Errorf("unknown query parameter %q (allowed: trace_id, service, severity, since, limit)", name)
		}
		if len(vals) > 1 {
			return q, fmt.Errorf("query parameter %q is given %d times", name, len(vals))
		}
	}
	if s := v.Get("trace_id"); v.Has("trace_id") {
		s = strings.ToLower(s)
		if b, err := hex.DecodeString(s); err != nil || len(b) != 16 || s == strings.Repeat("0", 32) {
			return q, fmt.Errorf("trace_id %q is not a trace id (32 hex digits, not all zero)", v.Get("trace_id"))
		}
		q.TraceID = s
	}
	if v.Has("service") {
		q.Service = v.Get("service")
		if q.Service == "" {
			return q, fmt.Errorf("service must not be empty")
		}
	}
	if v.Has("severity") {
		s, err := impactapi.ParseSeverity(v.Get("severity"))
		if err != nil {
			return q, err
		}
		q.Severity = s
	}
	if v.Has("since") {
		since, err := parseSince(v.Get("since"), now)
		if err != nil {
			return q, err
		}
		q.Since = since
	}
	if v.Has("limit") {
		n, err := strconv.Atoi(v.Get("limit"))
		if err != nil || n < 1 || n > maxListLimit {
			return q, fmt.Errorf("limit %q is not a whole number from 1 to %d", v.Get("limit"), maxListLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// parseSince accepts an RFC 3339 time or a positive duration ago (e.g. 15m, 24h).
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("since %q is neither an RFC 3339 time nor a positive duration such as 15m", s)
}

func (a *apiHandler) listIncidents(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r.URL.Query(), a.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", err)
		return
	}
	raws, err := a.store.list(q)
	if err != nil {
		a.logger.Error("listing incidents failed", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "listing incidents failed: %s", err)
		return
	}
	// The stored JSON is written as is: no decode and re-encode on the read path.
	n := 32
	for _, raw := range raws {
		n += len(raw) + 1
	}
	var b bytes.Buffer
	b.Grow(n)
	b.WriteString(`{"incidents":[`)
	for i, raw := range raws {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(raw)
	}
	b.WriteString(`],"count":`)
	b.WriteString(strconv.Itoa(len(raws)))
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes())
}

func (a *apiHandler) getIncident(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	raw, err := a.store.get(id)
	switch {
	case err != nil:
		a.logger.Error("reading incident failed", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "reading incident failed: %s", err)
	case raw == nil:
		writeError(w, http.StatusNotFound, "no incident %q", id)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(raw, '\n'))
	}
}

func (a *apiHandler) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(impactapi.Health{Status: "ok", Incidents: a.store.Len()})
}

func (a *apiHandler) stream(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, "the stream takes no query parameters")
		return
	}
	frames, cancel, ok := a.broker.subscribe()
	defer cancel()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "the exporter is shutting down")
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		// The server's write_timeout would end a stream; each write gets its own deadline instead.
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte(": connected\n\n")) {
		return
	}
	heartbeat := a.heartbeat
	if heartbeat <= 0 {
		heartbeat = streamHeartbeat
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.broker.done:
			return
		case f := <-frames:
			if !write(f) {
				return
			}
		case <-tick.C:
			if !write([]byte(": keepalive\n\n")) {
				return
			}
		}
	}
}
