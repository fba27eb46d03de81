package impactexporter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/yairfalse/tapio/pkg/impactapi"
)

// storeFile is the name of the incident database inside storage.directory.
const storeFile = "incidents.db"

// initialMmapSize is the address space reserved for the store file (not memory).
const initialMmapSize = 1 << 30

// maxBatchDelay is how long a write waits for concurrent writes to join its transaction.
const maxBatchDelay = 2 * time.Millisecond

// storeSchema is written to the meta bucket; a file of another schema is refused, not misread.
const storeSchema = "tapio.impact.v1"

var (
	bucketIncidents = []byte("incidents")   // id → incident JSON
	bucketMeta      = []byte("meta")        // id → incidentMeta (binary)
	bucketByTime    = []byte("by_time")     // updated(8) id → ∅
	bucketByTrace   = []byte("by_trace")    // trace 0 updated(8) id → ∅
	bucketByService = []byte("by_service")  // service 0 updated(8) id → ∅
	bucketBySev     = []byte("by_severity") // rank(1) updated(8) id → ∅
	bucketDeps      = []byte("dependencies")
	bucketTotals    = []byte("totals") // keyTotals → incidents(8) bytes(8) txid(8)
	bucketSchema    = []byte("schema")
	keySchema       = []byte("version")
	keyTotals       = []byte("records")
)

// storeTotals is what storage.max_incidents and storage.max_size_mib are checked against. It is
// kept in the file and changed in the transaction that changes the incidents, so checking a cap
// costs one read and one write of a small value per transaction, never a count.
type storeTotals struct {
	incidents int64
	// bytes is the record bytes of every stored incident (see recordBytes).
	bytes int64
}

const totalsLen = 24

// marshalTotals also records the transaction that wrote the totals: a file changed afterwards by
// a transaction that did not keep them (an exporter from before the caps) is told apart at open,
// and its totals are counted again.
func marshalTotals(t storeTotals, txid int) []byte {
	b := make([]byte, 0, totalsLen)
	b = binary.BigEndian.AppendUint64(b, uint64(t.incidents))
	b = binary.BigEndian.AppendUint64(b, uint64(t.bytes))
	return binary.BigEndian.AppendUint64(b, uint64(txid))
}

func unmarshalTotals(b []byte) (t storeTotals, txid int, ok bool) {
	if len(b) != totalsLen {
		return t, 0, false
	}
	t.incidents = int64(binary.BigEndian.Uint64(b))
	t.bytes = int64(binary.BigEndian.Uint64(b[8:]))
	return t, int(binary.BigEndian.Uint64(b[16:])), true
}

// recordBytes is the size of one incident as storage.max_size_mib counts it: the keys and values
// it has in the incidents and meta buckets, and its index keys. It is what the exporter writes,
// not the file's size, which adds bbolt's page overhead and keeps freed pages for reuse.
func recordBytes(id string, jsonLen, metaLen, indexKeyLen int) int64 {
	return int64(2*len(id) + jsonLen + metaLen + indexKeyLen)
}

// storeCaps are the bounds eviction keeps the store within.
type storeCaps struct {
	maxIncidents int64
	maxBytes     int64
}

func capsOf(cfg StorageConfig) storeCaps {
	return storeCaps{maxIncidents: int64(cfg.MaxIncidents), maxBytes: int64(cfg.MaxSizeMiB) << 20}
}

// exceeded names the cap t is over, max_incidents first.
func (c storeCaps) exceeded(t storeTotals) (evictionReason, bool) {
	switch {
	case t.incidents > c.maxIncidents:
		return evictedByMaxIncidents, true
	case t.incidents > 0 && t.bytes > c.maxBytes:
		return evictedByMaxSize, true
	}
	return 0, false
}

// evictionReason is why incidents were deleted, the reason attribute of
// otelcol_exporter_impact_incidents_expired.
type evictionReason uint8

const (
	evictedByRetention evictionReason = iota
	evictedByMaxIncidents
	evictedByMaxSize
	evictionReasonCount
)

var evictionReasonNames = [evictionReasonCount]string{
	evictedByRetention:    "retention",
	evictedByMaxIncidents: "max_incidents",
	evictedByMaxSize:      "max_size",
}

// evictions counts deleted incidents by reason.
type evictions [evictionReasonCount]int64

func (e *evictions) add(o evictions) {
	for i, n := range o {
		e[i] += n
	}
}

func (e *evictions) total() (n int64) {
	for _, v := range e {
		n += v
	}
	return n
}

// incidentMeta is what the indexes need to find and remove an incident's entries without
// decoding its JSON.
type incidentMeta struct {
	version  int64
	updated  int64 // unix nanoseconds
	detected int64 // unix nanoseconds
	severity byte
	traces   []string
	services []string
}

func (m *incidentMeta) marshal(buf []byte) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(m.version))
	buf = binary.BigEndian.AppendUint64(buf, uint64(m.updated))
	buf = binary.BigEndian.AppendUint64(buf, uint64(m.detected))
	buf = append(buf, m.severity)
	for _, list := range [][]string{m.traces, m.services} {
		buf = binary.AppendUvarint(buf, uint64(len(list)))
		for _, s := range list {
			buf = binary.AppendUvarint(buf, uint64(len(s)))
			buf = append(buf, s...)
		}
	}
	return buf
}

var errBadMeta = errors.New("corrupt incident metadata")

func (m *incidentMeta) unmarshal(b []byte) error {
	if len(b) < 25 {
		return errBadMeta
	}
	m.version = int64(binary.BigEndian.Uint64(b))
	m.updated = int64(binary.BigEndian.Uint64(b[8:]))
	m.detected = int64(binary.BigEndian.Uint64(b[16:]))
	m.severity = b[24]
	b = b[25:]
	for _, list := range []*[]string{&m.traces, &m.services} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)) {
			return errBadMeta
		}
		b = b[k:]
		*list = make([]string, 0, n)
		for i := uint64(0); i < n; i++ {
			l, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < l {
				return errBadMeta
			}
			*list = append(*list, string(b[k:k+int(l)]))
			b = b[k+int(l):]
		}
	}
	return nil
}

func metaOf(inc *impactapi.Incident) incidentMeta {
	return incidentMeta{
		version:  inc.Version,
		updated:  inc.UpdatedAt.UnixNano(),
		detected: inc.DetectedAt.UnixNano(),
		severity: byte(inc.Severity.Rank()),
		traces:   inc.TraceIDs,
		services: inc.Services,
	}
}

// indexKeys calls put for every index entry of an incident and returns the length of the keys.
func indexKeys(id string, m *incidentMeta, put func(bucket, key []byte) error) (int, error) {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(m.updated))
	key := func(prefix ...[]byte) []byte {
		n := len(ts) + len(id)
		for _, p := range prefix {
			n += len(p)
		}
		k := make([]byte, 0, n)
		for _, p := range prefix {
			k = append(k, p...)
		}
		return append(append(k, ts[:]...), id...)
	}
	var errs []error
	n := 0
	each := func(bucket, k []byte) {
		n += len(k)
		if err := put(bucket, k); err != nil {
			errs = append(errs, err)
		}
	}
	each(bucketByTime, key())
	each(bucketBySev, key([]byte{m.severity}))
	for _, t := range m.traces {
		each(bucketByTrace, key([]byte(t), []byte{0}))
	}
	for _, s := range m.services {
		each(bucketByService, key([]byte(s), []byte{0}))
	}
	return n, errors.Join(errs...)
}

// upsertResult says what one upsert did to one incident.
type upsertResult struct {
	incident    *impactapi.Incident
	stored      bool
	created     bool
	oldSeverity impactapi.Severity
	merged      int // incidents removed because this one absorbed them
}

// upsertOutcome says what one upsert did.
type upsertOutcome struct {
	results []upsertResult
	// refusedEdges are new dependency edges not kept because max_dependency_edges was reached.
	refusedEdges int
	// evicted are the least recently updated incidents deleted to keep the store within its caps.
	evicted evictions
}

// store is the embedded incident store: one bbolt file, secondary indexes in their own buckets,
// every index ordered by update time so a filtered, newest-first listing is a bounded scan.
type store struct {
	db   *bolt.DB
	caps storeCaps
	// count and bytes mirror the totals in the file for readers outside a transaction; every
	// transaction adds what it changed when it commits.
	count    atomic.Int64
	bytes    atomic.Int64
	maxEdges int
	// totalsRebuilt says that open counted the totals again: the file had none, or had been
	// written since by a transaction that did not keep them.
	totalsRebuilt bool

	depMu sync.RWMutex
	deps  map[string]map[string]int64 // dependency → dependent → last seen (unix ns)
	edges int
}

func openStore(cfg StorageConfig) (*store, error) {
	if err := os.MkdirAll(cfg.Directory, 0o750); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	path := filepath.Join(cfg.Directory, storeFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      cfg.OpenTimeout,
		FreelistType: bolt.FreelistMapType,
		// As etcd does: the freelist is rebuilt at open instead of written on every commit.
		NoFreelistSync: true,
		// Reserve address space up front so a growing file is not remapped (which copies every
		// live node and waits for readers) on the write path. Only touched pages use memory.
		InitialMmapSize: initialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("open incident store %s: %w", path, err)
	}
	db.MaxBatchDelay = maxBatchDelay
	s := &store{db: db, caps: capsOf(cfg), maxEdges: cfg.MaxDependencyEdges, deps: map[string]map[string]int64{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketIncidents, bucketMeta, bucketByTime, bucketByTrace, bucketByService, bucketBySev, bucketDeps, bucketTotals, bucketSchema} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		sb := tx.Bucket(bucketSchema)
		switch v := sb.Get(keySchema); {
		case v == nil:
			if err := sb.Put(keySchema, []byte(storeSchema)); err != nil {
				return err
			}
		case string(v) != storeSchema:
			return fmt.Errorf("%s holds schema %q, this exporter reads %q", path, v, storeSchema)
		}
		b := newTxBuckets(tx)
		// The totals are current when the last committed transaction wrote them; this one is
		// the next.
		tot, txid, ok := unmarshalTotals(b.totals.Get(keyTotals))
		if !ok || txid != tx.ID()-1 {
			var err error
			if tot, err = b.countTotals(); err != nil {
				return fmt.Errorf("%s: count the stored incidents: %w", path, err)
			}
			s.totalsRebuilt = true
		}
		if err := b.saveTotals(tot, tx.ID()); err != nil {
			return err
		}
		s.count.Store(tot.incidents)
		s.bytes.Store(tot.bytes)
		return tx.Bucket(bucketDeps).ForEach(func(k, v []byte) error {
			dep, dependent, ok := bytes.Cut(k, []byte{0})
			if ok && len(v) == 8 {
				s.addEdgeLocked(string(dep), string(dependent), int64(binary.BigEndian.Uint64(v)))
			}
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) close() error { return s.db.Close() }

// Len is the number of stored incidents.
func (s *store) Len() int64 { return s.count.Load() }

// Bytes is the record bytes of the stored incidents, as storage.max_size_mib counts them.
func (s *store) Bytes() int64 { return s.bytes.Load() }

// write runs fn in the write transaction tx with the store's totals, which fn changes with what
// it writes, and saves them in the same transaction. The in-memory copy gets the difference when
// tx commits: transactions commit one at a time, but their commit handlers may run in any order.
func (s *store) write(tx *bolt.Tx, fn func(b txBuckets, tot *storeTotals) error) error {
	b := newTxBuckets(tx)
	before, _, ok := unmarshalTotals(b.totals.Get(keyTotals))
	if !ok {
		return errors.New("incident store totals are missing or corrupt")
	}
	tot := before
	if err := fn(b, &tot); err != nil {
		return err
	}
	if err := b.saveTotals(tot, tx.ID()); err != nil {
		return err
	}
	tx.OnCommit(func() {
		s.count.Add(tot.incidents - before.incidents)
		s.bytes.Add(tot.bytes - before.bytes)
	})
	return nil
}

// upsert stores scored incidents and the service dependencies their chains show in one
// transaction: one commit (and its fsyncs) per batch of records. An incident replaces the stored
// one only when its version is newer; the first detection time is kept across versions.
// Incidents absorbed by a merge are removed. When the store is then over a cap, the least
// recently updated incidents are evicted in the same transaction, up to len(incs)+deleteBatch:
// as many as this call can have added, and some of a backlog left by lowered caps.
//
// raws holds each incident's JSON, encoded by the caller (outside the write lock); an update whose
// first detection time differs from the stored one is encoded again here.
func (s *store) upsert(incs []*impactapi.Incident, raws [][]byte, edges [][2]string, now time.Time) (upsertOutcome, error) {
	var out upsertOutcome
	accepted, refusedEdges := s.acceptEdges(edges, now)
	// Batch joins concurrent callers (the sending queue's consumers) into one transaction and one
	// commit; it may run this function again alone if a joined one fails, so it starts afresh.
	err := s.db.Batch(func(tx *bolt.Tx) error {
		out = upsertOutcome{results: out.results[:0], refusedEdges: refusedEdges}
		if err := putEdges(tx, accepted, now); err != nil {
			return err
		}
		return s.write(tx, func(b txBuckets, tot *storeTotals) error {
			var metaBuf []byte
			for i, inc := range incs {
				r, err := b.put(tot, inc, raws[i], &metaBuf)
				if err != nil {
					return err
				}
				out.results = append(out.results, r)
			}
			var err error
			out.evicted, err = b.evictOldest(tot, s.caps, len(incs)+deleteBatch)
			return err
		})
	})
	if err != nil {
		return upsertOutcome{refusedEdges: refusedEdges}, err
	}
	return out, nil
}

// put stores one incident unless the stored version is the same or newer, removes the incidents
// it absorbed, and changes tot by what it wrote and deleted. metaBuf is reused across calls.
func (b txBuckets) put(tot *storeTotals, inc *impactapi.Incident, raw []byte, metaBuf *[]byte) (upsertResult, error) {
	r := upsertResult{incident: inc}
	var old incidentMeta
	oldRaw := b.meta.Get([]byte(inc.ID))
	if oldRaw != nil {
		if err := old.unmarshal(oldRaw); err != nil {
			return r, fmt.Errorf("incident %s: %w", inc.ID, err)
		}
		if old.version >= inc.Version {
			return r, nil
		}
		if detected := time.Unix(0, old.detected).UTC(); !detected.Equal(inc.DetectedAt) {
			inc.DetectedAt = detected
			setTimeToDetection(inc)
			var err error
			if raw, err = json.Marshal(inc); err != nil {
				return r, err
			}
		}
		r.oldSeverity = severityOfRank(old.severity)
		oldJSONLen, oldMetaLen := len(b.incidents.Get([]byte(inc.ID))), len(oldRaw)
		indexLen, err := b.removeIndexes(inc.ID, &old)
		if err != nil {
			return r, err
		}
		tot.bytes -= recordBytes(inc.ID, oldJSONLen, oldMetaLen, indexLen)
	} else {
		r.created = true
		tot.incidents++
	}
	for _, merged := range inc.MergedIDs {
		if merged == inc.ID {
			continue
		}
		size, removed, err := b.delete(merged)
		if err != nil {
			return r, err
		}
		if removed {
			r.merged++
			tot.incidents--
			tot.bytes -= size
		}
	}
	m := metaOf(inc)
	*metaBuf = m.marshal((*metaBuf)[:0])
	if err := b.incidents.Put([]byte(inc.ID), raw); err != nil {
		return r, err
	}
	if err := b.meta.Put([]byte(inc.ID), slices.Clone(*metaBuf)); err != nil {
		return r, err
	}
	indexLen, err := indexKeys(inc.ID, &m, func(bucket, key []byte) error { return b.bucket(bucket).Put(key, nil) })
	if err != nil {
		return r, err
	}
	tot.bytes += recordBytes(inc.ID, len(raw), len(*metaBuf), indexLen)
	r.stored = true
	return r, nil
}

// acceptEdges remembers observed service dependencies for cascade risk. It returns the edges to
// persist and how many new ones were refused because max_dependency_edges was reached. An edge
// already known is persisted again only to refresh its time, at most once a minute.
func (s *store) acceptEdges(edges [][2]string, now time.Time) (accepted [][2]string, refused int) {
	if len(edges) == 0 {
		return nil, 0
	}
	ts := now.UnixNano()
	s.depMu.Lock()
	defer s.depMu.Unlock()
	for _, e := range edges {
		prev, known := s.deps[e[0]][e[1]]
		if !s.addEdgeLocked(e[0], e[1], ts) {
			refused++
			continue
		}
		if !known || ts-prev >= int64(time.Minute) {
			accepted = append(accepted, e)
		}
	}
	return accepted, refused
}

func putEdges(tx *bolt.Tx, edges [][2]string, now time.Time) error {
	if len(edges) == 0 {
		return nil
	}
	b := tx.Bucket(bucketDeps)
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(now.UnixNano()))
	for _, e := range edges {
		if err := b.Put([]byte(e[0]+"\x00"+e[1]), v[:]); err != nil {
			return err
		}
	}
	return nil
}

// addEdgeLocked adds or refreshes an edge; false when it is new and the graph is full.
func (s *store) addEdgeLocked(dependency, dependent string, seen int64) bool {
	m := s.deps[dependency]
	if _, ok := m[dependent]; !ok {
		if s.edges >= s.maxEdges {
			return false
		}
		if m == nil {
			m = map[string]int64{}
			s.deps[dependency] = m
		}
		s.edges++
	}
	m[dependent] = max(m[dependent], seen)
	return true
}

func (s *store) dependentsOf(service string) []string {
	s.depMu.RLock()
	defer s.depMu.RUnlock()
	return slices.Sorted(maps.Keys(s.deps[service]))
}

// get returns a copy of an incident's JSON, or nil.
func (s *store) get(id string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketIncidents).Get([]byte(id)); v != nil {
			out = slices.Clone(v)
		}
		return nil
	})
	return out, err
}

// incidentQuery filters a listing. Zero fields do not filter.
type incidentQuery struct {
	TraceID  string
	Service  string
	Severity impactapi.Severity
	Since    time.Time // updated at or after
	Limit    int
}

// list returns copies of the JSON of the newest incidents matching q, newest first. It walks the
// most selective index, newest first, and stops at since or at the limit.
func (s *store) list(q incidentQuery) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		var bucket, prefix []byte
		switch {
		case q.TraceID != "":
			bucket, prefix = bucketByTrace, append([]byte(q.TraceID), 0)
		case q.Service != "":
			bucket, prefix = bucketByService, append([]byte(q.Service), 0)
		case q.Severity != "":
			bucket, prefix = bucketBySev, []byte{byte(q.Severity.Rank())}
		default:
			bucket = bucketByTime
		}
		// Filters the chosen index does not answer are checked against the metadata.
		checkSeverity := q.Severity != "" && !bytes.Equal(bucket, bucketBySev)
		checkService := q.Service != "" && !bytes.Equal(bucket, bucketByService)
		incidents, meta := tx.Bucket(bucketIncidents), tx.Bucket(bucketMeta)
		since := q.Since.UnixNano()
		c := tx.Bucket(bucket).Cursor()
		var m incidentMeta
		for k := seekLastWithPrefix(c, prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			rest := k[len(prefix):]
			if len(rest) < 8 {
				continue
			}
			if !q.Since.IsZero() && int64(binary.BigEndian.Uint64(rest)) < since {
				break
			}
			id := rest[8:]
			if checkSeverity || checkService {
				if err := m.unmarshal(meta.Get(id)); err != nil {
					return fmt.Errorf("incident %s: %w", id, err)
				}
				if checkSeverity && m.severity != byte(q.Severity.Rank()) {
					continue
				}
				if checkService && !slices.Contains(m.services, q.Service) {
					continue
				}
			}
			if v := incidents.Get(id); v != nil {
				out = append(out, slices.Clone(v))
				if q.Limit > 0 && len(out) >= q.Limit {
					break
				}
			}
		}
		return nil
	})
	return out, err
}

// seekLastWithPrefix positions c on the last key with the prefix (or on the key just before,
// which the caller's HasPrefix check rejects) and returns it.
func seekLastWithPrefix(c *bolt.Cursor, prefix []byte) []byte {
	if len(prefix) == 0 {
		k, _ := c.Last()
		return k
	}
	succ := slices.Clone(prefix)
	for i := len(succ) - 1; i >= 0; i-- {
		if succ[i] < 0xff {
			succ[i]++
			succ = succ[:i+1]
			k, _ := c.Seek(succ)
			if k == nil {
				k, _ = c.Last()
				return k
			}
			k, _ = c.Prev()
			return k
		}
	}
	k, _ := c.Last()
	return k
}

// deleteBatch bounds the deletions of one retention or eviction transaction, so the writer lock
// is never held for long while the queue's writes wait.
const deleteBatch = 1000

// expire deletes incidents not updated since cutoff, at most batch per transaction, and
// dependency edges not seen since cutoff. It returns how many incidents it deleted.
func (s *store) expire(cutoff time.Time, batch int) (int64, error) {
	var total int64
	limit := cutoff.UnixNano()
	for {
		var n int64
		err := s.db.Update(func(tx *bolt.Tx) error {
			n = 0
			return s.write(tx, func(b txBuckets, tot *storeTotals) error {
				c := b.byTime.Cursor()
				var ids []string
				for k, _ := c.First(); k != nil && len(ids) < batch; k, _ = c.Next() {
					if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) >= limit {
						break
					}
					ids = append(ids, string(k[8:]))
				}
				for _, id := range ids {
					size, removed, err := b.delete(id)
					if err != nil {
						return err
					}
					if removed {
						n++
						tot.incidents--
						tot.bytes -= size
					}
				}
				return nil
			})
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(batch) {
			break
		}
	}
	return total, s.expireDependencies(limit)
}

// evict deletes the least recently updated incidents while the store is over a cap, at most
// batch per transaction; upserts evict what they add, so this only has work after the caps were
// lowered across a restart.
func (s *store) evict(batch int) (evictions, error) {
	var total evictions
	for {
		var ev evictions
		err := s.db.Update(func(tx *bolt.Tx) error {
			return s.write(tx, func(b txBuckets, tot *storeTotals) (err error) {
				ev, err = b.evictOldest(tot, s.caps, batch)
				return err
			})
		})
		if err != nil {
			return total, err
		}
		total.add(ev)
		if ev.total() < int64(batch) {
			return total, nil
		}
	}
}

func (s *store) expireDependencies(limit int64) error {
	var stale [][]byte
	s.depMu.Lock()
	for dep, m := range s.deps {
		for dependent, seen := range m {
			if seen < limit {
				delete(m, dependent)
				s.edges--
				stale = append(stale, []byte(dep+"\x00"+dependent))
			}
		}
		if len(m) == 0 {
			delete(s.deps, dep)
		}
	}
	s.depMu.Unlock()
	if len(stale) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		// No incident changes, but the totals record every transaction that wrote the file.
		return s.write(tx, func(txBuckets, *storeTotals) error {
			b := tx.Bucket(bucketDeps)
			for _, k := range stale {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

type txBuckets struct {
	incidents, meta, byTime, byTrace, byService, bySev, totals *bolt.Bucket
}

func newTxBuckets(tx *bolt.Tx) txBuckets {
	return txBuckets{
		incidents: tx.Bucket(bucketIncidents),
		meta:      tx.Bucket(bucketMeta),
		byTime:    tx.Bucket(bucketByTime),
		byTrace:   tx.Bucket(bucketByTrace),
		byService: tx.Bucket(bucketByService),
		bySev:     tx.Bucket(bucketBySev),
		totals:    tx.Bucket(bucketTotals),
	}
}

func (b txBuckets) bucket(name []byte) *bolt.Bucket {
	switch string(name) {
	case string(bucketByTime):
		return b.byTime
	case string(bucketByTrace):
		return b.byTrace
	case string(bucketByService):
		return b.byService
	case string(bucketBySev):
		return b.bySev
	}
	panic("unknown index bucket " + string(name))
}

func (b txBuckets) saveTotals(t storeTotals, txid int) error {
	return b.totals.Put(keyTotals, marshalTotals(t, txid))
}

// countTotals counts the stored incidents and their record bytes, for a file whose totals are
// missing or stale. It reads every incident's metadata: O(incidents), at open only.
func (b txBuckets) countTotals() (storeTotals, error) {
	var t storeTotals
	var m incidentMeta
	err := b.meta.ForEach(func(k, v []byte) error {
		if err := m.unmarshal(v); err != nil {
			return fmt.Errorf("incident %s: %w", k, err)
		}
		indexLen, _ := indexKeys(string(k), &m, func(_, _ []byte) error { return nil })
		t.incidents++
		t.bytes += recordBytes(string(k), len(b.incidents.Get(k)), len(v), indexLen)
		return nil
	})
	return t, err
}

// removeIndexes deletes an incident's index entries and returns the length of their keys.
func (b txBuckets) removeIndexes(id string, m *incidentMeta) (int, error) {
	return indexKeys(id, m, func(bucket, key []byte) error { return b.bucket(bucket).Delete(key) })
}

// delete removes an incident and its index entries and returns its record bytes; removed is
// false when it was not stored.
func (b txBuckets) delete(id string) (size int64, removed bool, err error) {
	raw := b.meta.Get([]byte(id))
	if raw == nil {
		return 0, false, nil
	}
	var m incidentMeta
	if err := m.unmarshal(raw); err != nil {
		return 0, false, fmt.Errorf("incident %s: %w", id, err)
	}
	size = recordBytes(id, len(b.incidents.Get([]byte(id))), len(raw), 0)
	indexLen, err := b.removeIndexes(id, &m)
	if err != nil {
		return 0, false, err
	}
	size += int64(indexLen)
	if err := b.meta.Delete([]byte(id)); err != nil {
		return 0, false, err
	}
	return size, true, b.incidents.Delete([]byte(id))
}

// evictOldest deletes the least recently updated incidents while tot is over one of caps, at
// most limit of them, and counts them by the cap each one was deleted for. Oldest is by
// by_time, the index retention walks: the update time, so an incident still being updated stays.
func (b txBuckets) evictOldest(tot *storeTotals, caps storeCaps, limit int) (evictions, error) {
	var ev evictions
	c := b.byTime.Cursor()
	for range limit {
		reason, over := caps.exceeded(*tot)
		if !over {
			break
		}
		// Seek afresh after each deletion: the cursor does not follow deletions made through
		// the bucket.
		k, _ := c.First()
		if k == nil {
			return ev, fmt.Errorf("incident store totals say %d incidents and %d bytes, but the time index is empty", tot.incidents, tot.bytes)
		}
		if len(k) < 8 {
			return ev, fmt.Errorf("malformed time index key %x", k)
		}
		size, removed, err := b.delete(string(k[8:]))
		if err != nil {
			return ev, err
		}
		if !removed {
			return ev, fmt.Errorf("time index entry for incident %s, which is not stored", k[8:])
		}
		tot.incidents--
		tot.bytes -= size
		ev[reason]++
	}
	return ev, nil
}

func setTimeToDetection(inc *impactapi.Incident) {
	inc.TimeToDetectionSeconds = max(0, inc.DetectedAt.Sub(inc.FirstSeen).Seconds())
}

func severityOfRank(r byte) impactapi.Severity {
	all := impactapi.Severities()
	if r == 0 || int(r) > len(all) {
		return ""
	}
	return all[r-1]
}
