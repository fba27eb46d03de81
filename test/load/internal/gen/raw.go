package gen

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// RunRaw offers the same requests as Run (traces: a SERVER span and its CLIENT child; errorlogs:
// the same log lines; the same attributes) but builds the OTLP messages itself instead of
// through the SDK, at a small fraction of the SDK's cost per item: each worker marshals a batch
// once a second and sends copies of it with fresh trace and span ids written over the old ones.
// It exists for the unlimited runs and the flood, which must offer more than a collector takes
// from a client sharing its machine. Every item has ids of its own; timestamps are at most a
// second old.
func RunRaw(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	begin := time.Now()
	w := window{start: begin.Add(cfg.Warmup)}
	w.end = w.start.Add(cfg.Duration)
	rec := newRecorder(w)
	runCtx, stop := context.WithDeadline(ctx, w.end)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Workers)
	for i := range cfg.Workers {
		conn, err := grpc.NewClient(cfg.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return Result{}, err
		}
		defer conn.Close()
		export := func(ctx context.Context, msgs []prebuilt) error {
			if cfg.Signal() == "logs" {
				var resp collogspb.ExportLogsServiceResponse
				if err := conn.Invoke(ctx, exportLogsMethod, msgs[0].wire, &resp, grpc.ForceCodec(wireCodec{})); err != nil {
					return err
				}
				if ps := resp.GetPartialSuccess(); ps.GetRejectedLogRecords() > 0 {
					return fmt.Errorf("partial success: %d log records rejected: %s", ps.GetRejectedLogRecords(), ps.GetErrorMessage())
				}
				return nil
			}
			var resp coltracepb.ExportTraceServiceResponse
			if err := conn.Invoke(ctx, exportTracesMethod, msgs[0].wire, &resp, grpc.ForceCodec(wireCodec{})); err != nil {
				return err
			}
			if ps := resp.GetPartialSuccess(); ps.GetRejectedSpans() > 0 {
				return fmt.Errorf("partial success: %d spans rejected: %s", ps.GetRejectedSpans(), ps.GetErrorMessage())
			}
			return nil
		}
		wk := newRawWorker(cfg, i)
		s := newSink(Config{BatchSize: 1, ExportTimeout: cfg.ExportTimeout, OpenLoop: cfg.OpenLoop, MaxInFlight: cfg.MaxInFlight}, rec, export)
		s.weight = func(m prebuilt) int { return m.items }
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPacer(cfg.Rate, cfg.Workers)
			var tpl *template
			for runCtx.Err() == nil {
				now := time.Now()
				if tpl == nil || now.Sub(tpl.built) >= templateAge {
					t, err := wk.template(now, cfg.BatchSize)
					if err != nil {
						errs <- err
						return
					}
					tpl = t
				}
				msg := tpl.instance(wk.rnd)
				rec.made(now, msg.items)
				s.batch = append(s.batch, msg)
				s.flush()
				p.wait(msg.items, runCtx.Done())
			}
			s.wg.Wait()
		}()
	}
	wg.Wait()
	res := rec.result(Result{Signal: cfg.Signal(), Mix: cfg.Mix + " (raw)", Workers: cfg.Workers, Rate: cfg.Rate, OpenLoop: cfg.OpenLoop})
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

const (
	exportTracesMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	exportLogsMethod   = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
	// templateAge is how long a marshaled batch is reused (with fresh ids) before it is built anew
	// with the time of day.
	templateAge = time.Second
)

// prebuilt is one Export request, already in wire form.
type prebuilt struct {
	wire  []byte
	items int // spans or log records
}

// wireCodec sends a prebuilt request as it is and reads the answer as protobuf; its name is
// proto's, so the collector reads it with its usual codec.
type wireCodec struct{}

func (wireCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return proto.Marshal(v.(proto.Message))
}
func (wireCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }
func (wireCodec) Name() string                       { return "proto" }

// template is a marshaled batch and where each of its ids sits in it.
type template struct {
	wire  []byte
	items int
	built time.Time
	ids   []idSlot
}

// idSlot is one id (16 bytes: a trace id, 8: a span id) and every place it is written: a trace id
// in both spans of a request, a SERVER span's id in its own span_id and its child's
// parent_span_id.
type idSlot struct {
	n  int
	at []int
}

// template builds a batch and marshals it. Protobuf writes a message's fields in field-number
// order (span: trace_id 1, span_id 2, parent_span_id 4; log record: trace_id 9, span_id 10), so
// each id is found after the one before.
func (w *rawWorker) template(now time.Time, size int) (*template, error) {
	var msg proto.Message
	var slots func(find func([]byte) int) []idSlot
	var n int
	if w.logs {
		rl, records := w.logBatch(now, size)
		n = len(records)
		msg = &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{rl}}
		slots = func(find func([]byte) int) []idSlot {
			var out []idSlot
			for _, r := range records {
				out = append(out, idSlot{n: 16, at: []int{find(r.TraceId)}}, idSlot{n: 8, at: []int{find(r.SpanId)}})
			}
			return out
		}
	} else {
		rs, count := w.batch(now, size)
		n = count
		msg = &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}}
		spans := rs.ScopeSpans[0].Spans
		slots = func(find func([]byte) int) []idSlot {
			var out []idSlot
			for i := 0; i+1 < len(spans); i += 2 {
				dep, srv := spans[i], spans[i+1]
				dt, ds, dp := find(dep.TraceId), find(dep.SpanId), find(dep.ParentSpanId)
				st, ss := find(srv.TraceId), find(srv.SpanId)
				out = append(out, idSlot{n: 16, at: []int{dt, st}}, idSlot{n: 8, at: []int{dp, ss}}, idSlot{n: 8, at: []int{ds}})
			}
			return out
		}
	}
	wire, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	pos := 0
	find := func(id []byte) int {
		i := bytes.Index(wire[pos:], id)
		if i < 0 {
			if err == nil {
				err = fmt.Errorf("id %x not found in the marshaled batch after byte %d", id, pos)
			}
			return 0
		}
		pos += i + len(id)
		return pos - len(id)
	}
	t := &template{wire: wire, items: n, built: now, ids: slots(find)}
	return t, err
}

// instance is a copy of the batch with new ids.
func (t *template) instance(rnd *rand.Rand) prebuilt {
	b := make([]byte, len(t.wire))
	copy(b, t.wire)
	var id [16]byte
	for _, slot := range t.ids {
		for i := 0; i < slot.n; i += 8 {
			u := rnd.Uint64()
			for j := range 8 {
				id[i+j] = byte(u >> (8 * j))
			}
		}
		id[0] |= 1
		for _, at := range slot.at {
			copy(b[at:], id[:slot.n])
		}
	}
	return prebuilt{wire: b, items: t.items}
}

type rawWorker struct {
	logs     bool
	route    route
	resource *resourcepb.Resource
	scope    *commonpb.InstrumentationScope
	server   []*commonpb.KeyValue // shared by every SERVER span: marshalling only reads them
	dep      []*commonpb.KeyValue
	failRate float64
	rnd      *rand.Rand
}

func newRawWorker(cfg Config, i int) *rawWorker {
	mix := cfg.Mix
	if cfg.Signal() == "logs" {
		mix = MixHealthy // the log worker's services, as in the SDK generator
	}
	r := routeOf(mix, i)
	res := &resourcepb.Resource{}
	for _, kv := range serviceResource(r, i).Attributes() {
		res.Attributes = append(res.Attributes, protoKV(kv))
	}
	server := []attribute.KeyValue{
		attribute.String("http.request.method", r.method),
		attribute.String("http.route", r.route),
		attribute.String("url.path", r.path),
		attribute.String("url.scheme", "http"),
		attribute.String("server.address", "shop.example"),
		attribute.Int("server.port", 8080),
		attribute.String("network.protocol.version", "1.1"),
		attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
	}
	w := &rawWorker{logs: cfg.Signal() == "logs", route: r, resource: res, failRate: cfg.errorFraction(),
		scope: &commonpb.InstrumentationScope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"},
		rnd:   rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano())))}
	for _, kv := range server {
		w.server = append(w.server, protoKV(kv))
	}
	for _, kv := range r.depAttrs {
		w.dep = append(w.dep, protoKV(kv))
	}
	return w
}

func protoKV(kv attribute.KeyValue) *commonpb.KeyValue {
	v := &commonpb.AnyValue{}
	switch kv.Value.Type() {
	case attribute.INT64:
		v.Value = &commonpb.AnyValue_IntValue{IntValue: kv.Value.AsInt64()}
	default:
		v.Value = &commonpb.AnyValue_StringValue{StringValue: kv.Value.Emit()}
	}
	return &commonpb.KeyValue{Key: string(kv.Key), Value: v}
}

func strKV(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intKV(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func (w *rawWorker) id(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		u := w.rnd.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(u >> (8 * j))
		}
	}
	b[0] |= 1
	return b
}

// batch makes requests until it holds at least size spans, as one ResourceSpans.
func (w *rawWorker) batch(now time.Time, size int) (*tracepb.ResourceSpans, int) {
	r := w.route
	spans := make([]*tracepb.Span, 0, size+1)
	for len(spans) < size {
		failed := w.failRate >= 1 || (w.failRate > 0 && w.rnd.Float64() < w.failRate)
		total := time.Duration(5+w.rnd.IntN(55)) * time.Millisecond
		start := now.Add(-total)
		tid, sid := w.id(16), w.id(8)
		srvAttrs := append(make([]*commonpb.KeyValue, 0, len(w.server)+3), w.server...)
		srvAttrs = append(srvAttrs, strKV("enduser.id", "user-"+strconv.Itoa(w.rnd.IntN(10000))))
		depAttrs := w.dep
		srv := &tracepb.Span{TraceId: tid, SpanId: sid, Name: r.method + " " + r.route, Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(now.UnixNano())}
		dep := &tracepb.Span{TraceId: tid, SpanId: w.id(8), ParentSpanId: sid, Name: r.depName, Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: uint64(start.Add(total / 5).UnixNano()), EndTimeUnixNano: uint64(start.Add(total/5 + total/2).UnixNano())}
		if failed {
			srvAttrs = append(srvAttrs, intKV("http.response.status_code", 500), strKV("error.type", "500"))
			srv.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
			depAttrs = append(append(make([]*commonpb.KeyValue, 0, len(w.dep)+2), w.dep...), strKV("error.type", r.depError))
			if r.depError == "503" {
				depAttrs = append(depAttrs, intKV("http.response.status_code", 503))
			}
			dep.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: r.route + ": " + r.service + " → " + depTarget(r) + " failed: " + r.depError}
		} else {
			srvAttrs = append(srvAttrs, intKV("http.response.status_code", 200))
		}
		srv.Attributes, dep.Attributes = srvAttrs, depAttrs
		spans = append(spans, dep, srv)
	}
	return &tracepb.ResourceSpans{Resource: w.resource, ScopeSpans: []*tracepb.ScopeSpans{{Scope: w.scope, Spans: spans}}}, len(spans)
}

// logBatch makes size log records of the errorlogs mix (the SDK generator's lines), each in a
// trace context of its own.
func (w *rawWorker) logBatch(now time.Time, size int) (*logspb.ResourceLogs, []*logspb.LogRecord) {
	r := w.route
	records := make([]*logspb.LogRecord, 0, size)
	ts := uint64(now.UnixNano())
	for range size {
		rec := &logspb.LogRecord{TimeUnixNano: ts, ObservedTimeUnixNano: ts, TraceId: w.id(16), SpanId: w.id(8), Flags: 1}
		if w.failRate >= 1 || (w.failRate > 0 && w.rnd.Float64() < w.failRate) {
			rec.SeverityNumber, rec.SeverityText = logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, "ERROR"
			rec.Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: r.method + " " + r.route + " failed: call to " + depTarget(r) + " failed (" + r.depError + ")"}}
			rec.Attributes = []*commonpb.KeyValue{strKV("http.route", r.route), intKV("http.response.status_code", 500), strKV("error.type", r.depError),
				strKV("server.address", depTarget(r)), strKV("enduser.id", "user-"+strconv.Itoa(w.rnd.IntN(10000)))}
		} else {
			ms := 5 + w.rnd.IntN(55)
			rec.SeverityNumber, rec.SeverityText = logspb.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
			rec.Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: r.method + " " + r.route + " 200 in " + strconv.Itoa(ms) + " ms"}}
			rec.Attributes = []*commonpb.KeyValue{strKV("http.route", r.route), intKV("http.response.status_code", 200), intKV("duration_ms", int64(ms))}
		}
		records = append(records, rec)
	}
	return &logspb.ResourceLogs{Resource: w.resource, ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: "shop/" + r.service}, LogRecords: records}}}, records
}
