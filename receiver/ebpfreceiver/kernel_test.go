package ebpfreceiver

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/yairfalse/tapio/internal/kerneltest"
	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/metadata"
)

// kernelEvent is one record the receiver emitted, with its resource.
type kernelEvent struct {
	resource pcommon.Map
	record   plog.LogRecord
}

// get returns an attribute of the event as readers find it: on the record, else on its resource
// (where the process it is about is written).
func (e kernelEvent) get(key string) (pcommon.Value, bool) {
	if v, ok := e.record.Attributes().Get(key); ok {
		return v, true
	}
	return e.resource.Get(key)
}

// str returns an attribute as a string; "" when it is absent.
func (e kernelEvent) str(key string) string {
	v, ok := e.get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

// int returns an integer attribute; 0 when it is absent.
func (e kernelEvent) int(key string) int64 {
	v, ok := e.get(key)
	if !ok {
		return 0
	}
	return v.Int()
}

// attributes is everything the event says, its resource's attributes and its own, for messages.
func (e kernelEvent) attributes() map[string]any {
	all := e.resource.AsRaw()
	for k, v := range e.record.Attributes().AsRaw() {
		all[k] = v
	}
	return all
}

type runningReceiver struct {
	sink     *consumertest.LogsSink
	mu       sync.Mutex
	tel      *componenttest.Telemetry
	receiver *ebpfReceiver
}

// startReceiver starts the real receiver against the running kernel, or skips with the reason;
// with TAPIO_REQUIRE_EBPF=1 (CI) a skip is a failure.
func startReceiver(t testing.TB, mutate func(*Config)) *runningReceiver {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Batch.Timeout = 50 * time.Millisecond
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rr := &runningReceiver{sink: new(consumertest.LogsSink), tel: componenttest.NewTelemetry()}
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = rr.tel.NewTelemetrySettings()
	r, err := NewFactory().CreateLogs(context.Background(), set, cfg, rr.sink)
	if err != nil {
		t.Fatal(err)
	}
	rr.receiver = r.(*ebpfReceiver)
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		kerneltest.SkipOrFail(t, "the ebpf receiver cannot start on this machine: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		_ = rr.tel.Shutdown(context.Background())
	})
	return rr
}

// waitFor returns the first emitted event of the given name that match accepts.
func (rr *runningReceiver) waitFor(t *testing.T, name unifiedevent.Name, timeout time.Duration, match func(kernelEvent) bool) kernelEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, ld := range rr.sink.AllLogs() {
			for i := 0; i < ld.ResourceLogs().Len(); i++ {
				rl := ld.ResourceLogs().At(i)
				for j := 0; j < rl.ScopeLogs().Len(); j++ {
					records := rl.ScopeLogs().At(j).LogRecords()
					for k := 0; k < records.Len(); k++ {
						e := kernelEvent{resource: rl.Resource().Attributes(), record: records.At(k)}
						if unifiedevent.Of(e.record.Attributes()).Name() == string(name) && match(e) {
							return e
						}
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event matched within %s (%d records received)", name, timeout, rr.sink.LogRecordCount())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count returns how many events named name matched so far: a record that merged repeats
// (log_count) counts as the events it stands for.
func (rr *runningReceiver) count(name unifiedevent.Name, match func(kernelEvent) bool) int {
	events, _ := rr.tally(name, match)
	return int(events)
}

// tally returns how many events named name matched so far, and in how many records.
func (rr *runningReceiver) tally(name unifiedevent.Name, match func(kernelEvent) bool) (events int64, records int) {
	for _, ld := range rr.sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				recs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < recs.Len(); k++ {
					e := kernelEvent{resource: rl.Resource().Attributes(), record: recs.At(k)}
					if unifiedevent.Of(e.record.Attributes()).Name() == string(name) && match(e) {
						events += unifiedevent.RepeatCount(e.record.Attributes())
						records++
					}
				}
			}
		}
	}
	return events, records
}

// assertUnifiedEvent checks what every kernel event carries.
func assertUnifiedEvent(t *testing.T, e kernelEvent) {
	t.Helper()
	attrs := unifiedevent.Of(e.record.Attributes())
	if _, err := attrs.Validate(); err != nil {
		t.Error(err)
	}
	if attrs.Source() != "ebpf" || !unifiedevent.ValidEventID(attrs.EventID()) || attrs.EntityID() == "" {
		t.Errorf("source %q id %q entity %q", attrs.Source(), attrs.EventID(), attrs.EntityID())
	}
	// The entity the receiver wrote is the one the schema's rule derives from the event's facts.
	if derived := unifiedevent.EntityID(e.resource, e.record.Attributes()); derived != attrs.EntityID() {
		t.Errorf("tapio.entity.id %q, but the entity-id rule gives %q from the event's attributes", attrs.EntityID(), derived)
	}
	if e.record.Body().Str() == "" {
		t.Error("no narrative")
	}
	if host, _ := os.Hostname(); e.resource.Len() == 0 || func() string { v, _ := e.resource.Get("host.name"); return v.Str() }() != host {
		t.Errorf("resource lacks host.name %q: %v", host, e.resource.AsRaw())
	}
	if d := time.Since(e.record.Timestamp().AsTime()); d < 0 || d > time.Minute {
		t.Errorf("timestamp %s is not a recent wall-clock time", e.record.Timestamp().AsTime())
	}
}

func mustContain(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s = %q, want it to contain %q", what, got, want)
	}
}

func pidString(pid int) string { return fmt.Sprint(pid) }
