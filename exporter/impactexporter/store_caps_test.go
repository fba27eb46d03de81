package impactexporter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/yairfalse/tapio/pkg/impactapi"
	ue "github.com/yairfalse/tapio/pkg/unifiedevent"
)

// ownIncident is the oom_chain correlation as incident i, with a trace and a service of its own,
// so that every index can be asked for it alone.
func ownIncident(i int) ue.CorrelationRecord {
	c := oomChain()
	c.ID = fmt.Sprintf("inc-%d", i)
	c.TraceIDs = []string{ownTrace(i)}
	c.Services = append(c.Services, ownService(i))
	return c
}

func ownTrace(i int) string   { return fmt.Sprintf("%032x", 0xa000+i) }
func ownService(i int) string { return fmt.Sprintf("svc-%d", i) }

// storedIDs lists the ids q answers, sorted.
func storedIDs(t *testing.T, s *store, q incidentQuery) []string {
	t.Helper()
	list, err := s.list(q)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(list))
	for _, raw := range list {
		var inc impactapi.Incident
		mustUnmarshal(t, raw, &inc)
		ids = append(ids, inc.ID)
	}
	slices.Sort(ids)
	return ids
}

// expectStored checks that exactly want are stored, by id and by every index: each one is found
// by its own trace and service, every other one by neither, and the time and severity indexes
// list exactly want.
func expectStored(t *testing.T, s *store, want []int, all int) {
	t.Helper()
	var wantIDs []string
	for _, i := range want {
		wantIDs = append(wantIDs, fmt.Sprintf("inc-%d", i))
	}
	slices.Sort(wantIDs)
	for i := range all {
		id := fmt.Sprintf("inc-%d", i)
		stored := slices.Contains(wantIDs, id)
		raw, err := s.get(id)
		if err != nil {
			t.Fatal(err)
		}
		if (raw != nil) != stored {
			t.Errorf("%s: get found it %v, want %v", id, raw != nil, stored)
		}
		for _, q := range []incidentQuery{{TraceID: ownTrace(i)}, {Service: ownService(i)}} {
			if got := storedIDs(t, s, q); (len(got) == 1 && got[0] == id) != stored || len(got) > 1 {
				t.Errorf("%+v lists %v; %s stored: %v", q, got, id, stored)
			}
		}
	}
	if got := storedIDs(t, s, incidentQuery{}); !slices.Equal(got, wantIDs) {
		t.Errorf("listing all: %v, want %v", got, wantIDs)
	}
	var bySeverity []string
	for _, sev := range impactapi.Severities() {
		bySeverity = append(bySeverity, storedIDs(t, s, incidentQuery{Severity: sev})...)
	}
	slices.Sort(bySeverity)
	if !slices.Equal(bySeverity, wantIDs) {
		t.Errorf("listing by severity: %v, want %v", bySeverity, wantIDs)
	}
	checkStoreConsistent(t, s)
}

// checkStoreConsistent walks the whole file: every incident has its metadata and every index
// entry its metadata names, no index entry is left over, and the totals (in the file and in
// memory) are the incidents counted and the bytes of their keys and values summed.
func checkStoreConsistent(t *testing.T, s *store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		b := newTxBuckets(tx)
		var count, size int64
		want := map[string]int{} // index bucket → entries the stored incidents need
		var m incidentMeta
		err := b.meta.ForEach(func(k, v []byte) error {
			count++
			size += int64(len(k) + len(v))
			if err := m.unmarshal(v); err != nil {
				return err
			}
			raw := b.incidents.Get(k)
			if raw == nil {
				t.Errorf("%s has metadata but no JSON", k)
			}
			size += int64(len(k) + len(raw))
			_, _ = indexKeys(string(k), &m, func(bucket, key []byte) error {
				want[string(bucket)]++
				if got, _ := b.bucket(bucket).Cursor().Seek(key); !bytes.Equal(got, key) {
					t.Errorf("%s: no %s entry %x", k, bucket, key)
				}
				return nil
			})
			return nil
		})
		if err != nil {
			return err
		}
		if n := b.incidents.Stats().KeyN; int64(n) != count {
			t.Errorf("%d incidents have JSON, %d have metadata", n, count)
		}
		for _, name := range [][]byte{bucketByTime, bucketByTrace, bucketByService, bucketBySev} {
			n := 0
			_ = tx.Bucket(name).ForEach(func(k, _ []byte) error {
				n++
				size += int64(len(k))
				return nil
			})
			if n != want[string(name)] {
				t.Errorf("%s holds %d entries, the stored incidents have %d", name, n, want[string(name)])
			}
		}
		tot, txid, ok := unmarshalTotals(b.totals.Get(keyTotals))
		if !ok || txid != tx.ID() {
			t.Errorf("totals %x were not written by the last transaction (%d)", b.totals.Get(keyTotals), tx.ID())
		}
		if tot != (storeTotals{incidents: count, bytes: size}) {
			t.Errorf("totals in the file %+v, counted %d incidents of %d bytes", tot, count, size)
		}
		if s.Len() != count || s.Bytes() != size {
			t.Errorf("totals in memory %d incidents of %d bytes, counted %d of %d", s.Len(), s.Bytes(), count, size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func evictedCount(t *testing.T, tel *componenttest.Telemetry, reason string) int64 {
	t.Helper()
	return counterValue(t, tel, "otelcol_exporter_impact_incidents_expired", attribute.String("reason", reason))
}

func TestMaxIncidentsEvictsTheLeastRecentlyUpdated(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg := testConfig(t)
	cfg.Storage.MaxIncidents = 3
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	clock := &testClock{now: base}
	e := startExporter(t, cfg, nil, tel, withClock(clock))
	at := func(minute int, rs ...ue.CorrelationRecord) {
		t.Helper()
		clock.Set(base.Add(time.Duration(minute) * time.Minute))
		consume(t, e, rs...)
	}

	at(0, ownIncident(0))
	at(1, ownIncident(1))
	at(2, ownIncident(2))
	updated := ownIncident(0)
	updated.Version = 2
	at(3, updated) // inc-0 is now the most recently updated
	expectStored(t, e.store, []int{0, 1, 2}, 6)

	at(4, ownIncident(3)) // one over: inc-1, updated longest ago, goes
	expectStored(t, e.store, []int{0, 2, 3}, 6)

	at(5, ownIncident(4), ownIncident(5)) // one batch, two over: inc-2, then inc-0
	expectStored(t, e.store, []int{3, 4, 5}, 6)

	if got := evictedCount(t, tel, "max_incidents"); got != 3 {
		t.Errorf("evicted for max_incidents = %d, want 3", got)
	}
	if got := evictedCount(t, tel, "max_size") + evictedCount(t, tel, "retention"); got != 0 {
		t.Errorf("evicted for max_size or retention = %d, want 0", got)
	}
}

func TestMaxSizeEvictsTheLeastRecentlyUpdated(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg := testConfig(t)
	cfg.Storage.MaxSizeMiB = 1
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	clock := &testClock{now: base}
	e := startExporter(t, cfg, nil, tel, withClock(clock))

	clock.Set(base)
	consume(t, e, ownIncident(0))
	one := e.store.Bytes()
	if one < 4<<10 {
		t.Fatalf("one oom_chain incident counts %d bytes; the test needs a few KB", one)
	}
	const total, batch = 600, 50 // ~3 MiB of records into a 1 MiB cap
	for lo := 1; lo < total; lo += batch {
		clock.Set(base.Add(time.Duration(lo) * time.Second))
		var rs []ue.CorrelationRecord
		for i := lo; i < min(lo+batch, total); i++ {
			rs = append(rs, ownIncident(i))
		}
		consume(t, e, rs...)
		if e.store.Bytes() > 1<<20 {
			t.Fatalf("after inc-%d: %d record bytes stored, over the 1 MiB cap", lo+len(rs)-1, e.store.Bytes())
		}
	}
	kept := int(e.store.Len())
	// The cap is full to within one incident, and what is kept is the newest.
	if free := int64(1<<20) - e.store.Bytes(); free < 0 || free > 2*one {
		t.Errorf("%d incidents of %d record bytes kept: %d bytes free under the cap, one incident is %d", kept, e.store.Bytes(), free, one)
	}
	var want []int
	for i := total - kept; i < total; i++ {
		want = append(want, i)
	}
	expectStored(t, e.store, want, total)
	if got := evictedCount(t, tel, "max_size"); got != int64(total-kept) {
		t.Errorf("evicted for max_size = %d, want %d", got, total-kept)
	}
	if got := evictedCount(t, tel, "max_incidents"); got != 0 {
		t.Errorf("evicted for max_incidents = %d, want 0", got)
	}
}

// An incident evicted and then updated again is a new incident: created, with the new version's
// detection time, and served by the API.
func TestEvictedIncidentUpdatedAgainIsCreatedAnew(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg := testConfig(t)
	cfg.Storage.MaxIncidents = 1
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	clock := &testClock{now: base}
	e := startExporter(t, cfg, nil, tel, withClock(clock))
	client := &impactapi.Client{Endpoint: "http://" + e.addr()}

	first := ownIncident(0)
	consume(t, e, first)
	clock.Set(base.Add(time.Minute))
	consume(t, e, ownIncident(1)) // evicts inc-0
	if _, err := client.Incident(t.Context(), "inc-0"); !impactapi.IsNotFound(err) {
		t.Fatalf("evicted inc-0: %v, want 404", err)
	}

	again := ownIncident(0)
	again.Version = 3
	again.ObservedTime = first.ObservedTime.Add(10 * time.Minute)
	clock.Set(base.Add(2 * time.Minute))
	consume(t, e, again) // evicts inc-1
	inc, err := client.Incident(t.Context(), "inc-0")
	if err != nil {
		t.Fatal(err)
	}
	if inc.Version != 3 || !inc.DetectedAt.Equal(again.ObservedTime) || !inc.UpdatedAt.Equal(base.Add(2*time.Minute)) {
		t.Errorf("inc-0 again: version %d, detected %s, updated %s; want 3, %s (its own), %s",
			inc.Version, inc.DetectedAt, inc.UpdatedAt, again.ObservedTime, base.Add(2*time.Minute))
	}
	list, err := client.Incidents(t.Context(), impactapi.Query{TraceID: ownTrace(0)})
	if err != nil || len(list.Incidents) != 1 || list.Incidents[0].Version != 3 {
		t.Errorf("by trace: %+v, %v; want inc-0 version 3 alone", list, err)
	}
	if got := counterValue(t, tel, "otelcol_exporter_impact_incidents_upserted", attribute.String("type", "created")); got != 3 {
		t.Errorf("created = %d, want 3 (inc-0, inc-1, inc-0 again)", got)
	}
	if got := evictedCount(t, tel, "max_incidents"); got != 2 {
		t.Errorf("evicted = %d, want 2", got)
	}
	expectStored(t, e.store, []int{0}, 2)
}

func TestRetentionCountsWithReason(t *testing.T) {
	e, tel, clock, base := startRetentionExporter(t)
	consume(t, e, ownIncident(0), ownIncident(1))
	clock.Set(base.Add(30 * time.Minute))
	consume(t, e, ownIncident(2))
	clock.Set(base.Add(61 * time.Minute))
	e.expireOnce()
	expectStored(t, e.store, []int{2}, 3)
	if got := evictedCount(t, tel, "retention"); got != 2 {
		t.Errorf("expired with reason retention = %d, want 2", got)
	}
}

// Updates that change an incident's size, merges and expiry all keep the totals exact.
func TestTotalsFollowUpdatesMergesAndExpiry(t *testing.T) {
	cfg := testConfig(t)
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	clock := &testClock{now: base}
	e := startExporter(t, cfg, nil, nil, withClock(clock))
	consume(t, e, ownIncident(0), ownIncident(1), ownIncident(2))
	checkStoreConsistent(t, e.store)

	shorter := ownIncident(0)
	shorter.Version = 2
	shorter.Chain = shorter.Chain[:3]
	shorter.TraceIDs = append(shorter.TraceIDs, traceA, traceB)
	clock.Set(base.Add(time.Minute))
	consume(t, e, shorter)
	checkStoreConsistent(t, e.store)

	merged := ownIncident(1)
	merged.Version = 2
	merged.MergedIDs = []string{"inc-2", "inc-9"} // inc-9 was never stored
	clock.Set(base.Add(2 * time.Minute))
	consume(t, e, merged)
	expectStored(t, e.store, []int{0, 1}, 3)

	clock.Set(base.Add(cfg.Storage.Retention + time.Minute + time.Second))
	e.expireOnce()
	expectStored(t, e.store, []int{1}, 3)
}

func TestReopenKeepsTheTotals(t *testing.T) {
	cfg := testConfig(t)
	first := startExporter(t, cfg, nil, nil)
	consume(t, first, ownIncident(0), ownIncident(1), ownIncident(2))
	count, size := first.store.Len(), first.store.Bytes()
	if err := first.shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	second := startExporter(t, cfg, nil, nil)
	if second.store.totalsRebuilt || second.store.Len() != count || second.store.Bytes() != size {
		t.Fatalf("reopened: rebuilt %v, %d incidents of %d bytes; want read from the file, %d of %d",
			second.store.totalsRebuilt, second.store.Len(), second.store.Bytes(), count, size)
	}
	checkStoreConsistent(t, second.store)
}

// A file with no totals (written before the caps) and a file changed by a transaction that did
// not keep them (an older exporter run on it since) have them counted again at open.
func TestOpenCountsMissingOrStaleTotals(t *testing.T) {
	cfg := testConfig(t)
	s, err := openStore(cfg.Storage)
	if err != nil {
		t.Fatal(err)
	}
	incs := make([]*impactapi.Incident, 4)
	raws := make([][]byte, 4)
	for i := range incs {
		incs[i] = scoredIncident(t, ownIncident(i))
		if raws[i], err = json.Marshal(incs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.upsert(incs, raws, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	count, size := s.Len(), s.Bytes()
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.Storage.Directory, storeFile)
	rawUpdate := func(fn func(tx *bolt.Tx) error) {
		t.Helper()
		// Opened as every exporter opens it: with NoFreelistSync, bbolt writes nothing at open.
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	reopen := func() *store {
		t.Helper()
		s, err := openStore(cfg.Storage)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.close() })
		return s
	}

	rawUpdate(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketTotals) })
	s = reopen()
	if !s.totalsRebuilt || s.Len() != count || s.Bytes() != size {
		t.Fatalf("no totals in the file: rebuilt %v, %d incidents of %d bytes; want %d of %d", s.totalsRebuilt, s.Len(), s.Bytes(), count, size)
	}
	checkStoreConsistent(t, s)
	_ = s.close()

	// As an exporter from before the caps deletes an incident: the totals are not touched.
	rawUpdate(func(tx *bolt.Tx) error { _, _, err := newTxBuckets(tx).delete("inc-1"); return err })
	s = reopen()
	if !s.totalsRebuilt || s.Len() != count-1 || s.Bytes() >= size {
		t.Fatalf("file changed behind the totals: rebuilt %v, %d incidents of %d bytes; want %d and fewer than %d", s.totalsRebuilt, s.Len(), s.Bytes(), count-1, size)
	}
	checkStoreConsistent(t, s)
}

// Caps lowered across a restart leave a backlog: evict deletes it in transactions of batch.
func TestEvictWorksOffALoweredCapInBatches(t *testing.T) {
	cfg := testConfig(t)
	storeAndStop(t, cfg, 50)
	cfg.Storage.MaxIncidents = 10
	s, err := openStore(cfg.Storage)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	txidOf := func() int {
		t.Helper()
		var txid int
		if err := s.db.View(func(tx *bolt.Tx) error {
			_, txid, _ = unmarshalTotals(tx.Bucket(bucketTotals).Get(keyTotals))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return txid
	}
	before := txidOf()
	ev, err := s.evict(7)
	if err != nil {
		t.Fatal(err)
	}
	if ev[evictedByMaxIncidents] != 40 || ev.total() != 40 {
		t.Fatalf("evicted %v, want 40 for max_incidents", ev)
	}
	// Every write transaction records itself in the totals: 40 in batches of 7 took six, the
	// last one short.
	if txs := txidOf() - before; txs != 6 {
		t.Errorf("evicted in %d transactions, want 6", txs)
	}
	if s.Len() != 10 {
		t.Fatalf("%d incidents after evict, want 10", s.Len())
	}
	checkStoreConsistent(t, s)
}

// The exporter works off a cap lowered across a restart in the background from start on, and
// counts what it evicts.
func TestLoweredCapIsEnforcedAfterStart(t *testing.T) {
	cfg := testConfig(t)
	storeAndStop(t, cfg, 30)

	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(t.Context()) }()
	cfg.Storage.MaxIncidents = 5
	e := startExporter(t, cfg, nil, tel)
	// The first round of the retention loop runs at start; wait for its counter, not for a time.
	for deadline := time.Now().Add(10 * time.Second); evictedCount(t, tel, "max_incidents") < 25; {
		if time.Now().After(deadline) {
			t.Fatalf("evicted %d after start, want 25", evictedCount(t, tel, "max_incidents"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if e.store.Len() != 5 {
		t.Fatalf("%d incidents stored, want 5", e.store.Len())
	}
	checkStoreConsistent(t, e.store)
}

// storeAndStop runs an exporter with cfg until it has stored n incidents of its own, and stops it.
func storeAndStop(t *testing.T, cfg *Config, n int) {
	t.Helper()
	e := startExporter(t, cfg, nil, nil)
	var rs []ue.CorrelationRecord
	for i := range n {
		rs = append(rs, ownIncident(i))
	}
	consume(t, e, rs...)
	if err := e.shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}
