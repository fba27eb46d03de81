// Package load is the shop's customers: a steady stream of requests per target, each with a
// customer id in X-User-Id, and an exact record of every answer — which requests failed, for
// which customers, in which trace — that an incident's figures are checked against.
package load

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one kind of request.
type Target struct {
	// Label names the target for Pause and Resume; Service is the service.name that answers it.
	Label   string
	Service string
	// Route is the http.route the service reports for it.
	Route string
	// UserPrefix names the customers: <prefix>-01 … <prefix>-<Users>.
	UserPrefix string
	Users      int
	// Rate is requests per second.
	Rate float64
	// Client sends the requests; nil is a plain client (a network namespace needs its own dialer).
	Client *http.Client
	// NewRequest builds request number n for a customer.
	NewRequest func(ctx context.Context, n int, user string) (*http.Request, error)
}

// Outcome is one answered (or unanswered) request.
type Outcome struct {
	Service, Route, User string
	// TraceID is the X-Trace-Id the service answered with.
	TraceID  string
	Status   int
	Err      string
	Start    time.Time
	Duration time.Duration
}

// Failed reports a server error or no answer at all.
func (o Outcome) Failed() bool { return o.Err != "" || o.Status >= 500 }

// Generator sends the requests of its targets until stopped.
type Generator struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	out    []Outcome
	paused map[string]*atomic.Bool
}

// maxInFlight bounds the requests of one target waiting for an answer; ticks beyond it are
// skipped, so a hung dependency cannot pile up goroutines.
const maxInFlight = 200

// Start starts one sender per target. seed makes the customer sequence reproducible.
func Start(ctx context.Context, seed uint64, targets ...Target) *Generator {
	ctx, cancel := context.WithCancel(ctx)
	g := &Generator{ctx: ctx, cancel: cancel, paused: map[string]*atomic.Bool{}}
	for i, t := range targets {
		paused := &atomic.Bool{}
		g.paused[t.Label] = paused
		g.wg.Add(1)
		go g.send(t, rand.New(rand.NewPCG(seed, uint64(i))), paused)
	}
	return g
}

func (g *Generator) send(t Target, rng *rand.Rand, paused *atomic.Bool) {
	defer g.wg.Done()
	client := t.Client
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	ticker := time.NewTicker(time.Duration(float64(time.Second) / t.Rate))
	defer ticker.Stop()
	var inFlight atomic.Int32
	var requests sync.WaitGroup
	defer requests.Wait()
	for n := 1; ; n++ {
		select {
		case <-g.ctx.Done():
			return
		case <-ticker.C:
		}
		if paused.Load() || inFlight.Load() >= maxInFlight {
			continue
		}
		user := fmt.Sprintf("%s-%02d", t.UserPrefix, rng.IntN(t.Users)+1)
		inFlight.Add(1)
		requests.Add(1)
		go func(n int) {
			defer requests.Done()
			defer inFlight.Add(-1)
			g.record(do(g.ctx, client, t, n, user))
		}(n)
	}
}

func do(ctx context.Context, client *http.Client, t Target, n int, user string) Outcome {
	o := Outcome{Service: t.Service, Route: t.Route, User: user, Start: time.Now()}
	// A request in flight when the generator stops still gets its answer: its outcome counts.
	req, err := t.NewRequest(context.WithoutCancel(ctx), n, user)
	if err != nil {
		o.Err = err.Error()
		return o
	}
	req.Header.Set("X-User-Id", user)
	resp, err := client.Do(req)
	o.Duration = time.Since(o.Start)
	if err != nil {
		o.Err = err.Error()
		return o
	}
	// Read to the end: a connection closed with unread bytes is reset, and the load generator's
	// own resets would be evidence of a fault it did not inject.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	o.Status = resp.StatusCode
	o.TraceID = resp.Header.Get("X-Trace-Id")
	return o
}

func (g *Generator) record(o Outcome) {
	g.mu.Lock()
	g.out = append(g.out, o)
	g.mu.Unlock()
}

// Pause stops sending the requests of a target until Resume; requests in flight finish.
func (g *Generator) Pause(label string) {
	if p, ok := g.paused[label]; ok {
		p.Store(true)
	}
}

// Resume sends the requests of a target again.
func (g *Generator) Resume(label string) {
	if p, ok := g.paused[label]; ok {
		p.Store(false)
	}
}

// Stop stops every sender, waits for the requests in flight, and returns every outcome.
func (g *Generator) Stop() []Outcome {
	g.cancel()
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Outcome(nil), g.out...)
}
