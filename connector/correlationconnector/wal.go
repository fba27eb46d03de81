package correlationconnector

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

// The write-ahead log keeps the open correlation state through a crash of the collector. Each
// Consume call that takes problem events into incidents writes one entry before it returns: the
// events, each with the incident it ended in, and the merges and evictions the call made. Each
// flush that emitted or closed incidents writes one entry after the records went downstream. At
// start the entries are replayed in order (replay.go) and the incidents come back with their ids,
// versions and evidence; the first flush then emits what is due. Entries below the oldest one an
// open incident still needs are deleted at each flush.
//
// Keys: walHeadKey holds the lowest live sequence number; entries are walKeyPrefix followed by
// their sequence number in 16 hex digits. Sequence numbers are contiguous from the head: a write
// that fails does not use up its number.

const (
	walHeadKey   = "wal/head"
	walKeyPrefix = "wal/"
	// walLayout is the version of the entry encoding. A build refuses entries of a newer layout
	// (written by a newer build) rather than guess at them.
	walLayout byte = 1
	// unassignedSeq marks an incident opened by a call whose entry has no sequence number yet.
	unassignedSeq = math.MaxUint64
	// replayBatch is how many entries one storage call reads at start.
	replayBatch = 64
)

// walOpKind is what one recorded change did.
type walOpKind uint8

const (
	walOpJoin  walOpKind = iota + 1 // an event joined incident id
	walOpMerge                      // incident other was merged into incident id
	walOpEvict                      // incident id was evicted by a cap (its record already left)
	walOpEmit                       // incident id was emitted at version, holding count events
	walOpClose                      // incident id was closed by a flush (its record already left)
	walOpImage                      // incident id as a whole (compaction): replaces what came before
	// walOpCount: count events joined incident id, none kept, all binding what its one event
	// binds (at the latest time of the run). It is how the entry encodes a run of joins that
	// were only counted — in an error storm, almost every event after the incident filled up —
	// so the log grows by a few bytes per such event, not by the event.
	walOpCount
	walOpKindEnd
)

// Flags of join and merge ops.
const (
	walJoinOpened  uint8 = 1 << 0 // the event opened the incident
	walJoinKept    uint8 = 1 << 1 // the event was kept in the chain (not only counted)
	walMergeListed uint8 = 1 << 0 // the absorbed incident goes into merged_ids
)

// walOp is one recorded change of the incident book.
type walOp struct {
	kind    walOpKind
	flags   uint8
	id      string
	other   string
	event   int32 // join: index of the event in its call's problems (or the entry's events)
	version int64
	count   int64
	// opened is the incident a live join opened, until its entry's sequence number is known;
	// for an image, the incident it was taken of.
	opened *incident
	// image is the whole incident, for walOpImage.
	image *incidentImage
	// prevFirstSeq is, for an image, the incident's firstSeq before the image was taken: restored
	// when the image could not be written.
	prevFirstSeq uint64
}

// incidentImage is everything the book holds of one incident, written by compaction so that the
// entries before it are no longer needed.
type incidentImage struct {
	version      int64
	lastEvidence int64
	dirtySince   int64
	eventCount   int64
	told         int64
	dirty        bool
	eligible     bool
	mergedIDs    []string
	events       []problemEvent
	keys         []boundKey
}

// boundKey is a link key bound to the incident, with the time of the latest event bound through it.
type boundKey struct {
	key  linkKey
	last int64
}

// walOps collects the changes of one call or flush. It is reused: a batch owns one.
type walOps struct{ ops []walOp }

func (o *walOps) add(op walOp) { o.ops = append(o.ops, op) }

func (o *walOps) reset() {
	clear(o.ops)
	o.ops = o.ops[:0]
}

// assignFirstSeq gives the incidents opened by this call the sequence number of its entry. It
// runs under the book's lock.
func (o *walOps) assignFirstSeq(seq uint64) {
	for i := range o.ops {
		if inc := o.ops[i].opened; inc != nil {
			if inc.firstSeq == unassignedSeq {
				inc.firstSeq = seq
			}
			o.ops[i].opened = nil
		}
	}
}

// walLog writes and replays the entries through a storage extension's client.
type walLog struct {
	client    storage.Client
	telemetry *selfTelemetry
	logger    *zap.Logger
	rules     []ThresholdRule
	// compactBytes is walCompactBytes (tests lower it).
	compactBytes int64

	// mu orders appends: the book takes it before releasing its own lock, so entries are
	// numbered in the order the book made their changes.
	mu    sync.Mutex
	next  uint64   // the sequence number of the next entry
	buf   []byte   // the entry being encoded
	sizes []uint32 // of the live entries, head first
	bytes int64    // their sum

	// Owned by the flush loop (and by Shutdown's final flush, after the loop stopped).
	head       uint64 // the lowest live sequence number
	flushOps   walOps // changes of flushes not yet written: a failed write is retried by the next
	compactOps walOps
	deletes    []*storage.Operation
}

// walCompactBytes: when the live entries hold more than this, the incidents that keep the oldest
// ones alive are written again as images, so that an incident open for long (an error storm that
// goes on) does not keep every entry since it opened. walImagesPerFlush bounds one flush's work.
const (
	walCompactBytes   = 32 << 20
	walImagesPerFlush = 64
)

// appended notes an entry written; it runs under w.mu.
func (w *walLog) appended(size int) {
	w.next++
	w.sizes = append(w.sizes, uint32(size))
	w.bytes += int64(size)
}

// liveBytes is the size of the live entries.
func (w *walLog) liveBytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bytes
}

// openWAL gets the storage client of the extension id from host.
func openWAL(ctx context.Context, host component.Host, storageID, self component.ID, st *selfTelemetry, logger *zap.Logger, rules []ThresholdRule) (*walLog, error) {
	ext, ok := host.GetExtensions()[storageID]
	if !ok {
		return nil, fmt.Errorf("storage: no extension %q is configured: add it under extensions and service.extensions, or remove storage to keep the correlation state in memory only", storageID)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage: extension %q is not a storage extension (such as file_storage)", storageID)
	}
	client, err := se.GetClient(ctx, component.KindConnector, self, "")
	if err != nil {
		return nil, fmt.Errorf("storage: client of extension %q: %w", storageID, err)
	}
	return &walLog{client: client, telemetry: st, logger: logger, rules: rules, compactBytes: walCompactBytes}, nil
}

func (w *walLog) close(ctx context.Context) error { return w.client.Close(ctx) }

// keyOf is the key of entry seq: the prefix and seq in 16 hex digits, so keys sort by seq.
func (w *walLog) keyOf(seq uint64) string {
	var key [len(walKeyPrefix) + 16]byte
	copy(key[:], walKeyPrefix)
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		key[len(walKeyPrefix)+i] = digits[seq&0xf]
		seq >>= 4
	}
	return string(key[:])
}

// writeLocked writes the entry of one Consume call and releases w.mu, which the book took for
// it. An error means the call's events are not persisted: the call must fail so that the sender
// sends them again.
func (w *walLog) writeLocked(ctx context.Context, now int64, ops *walOps, problems []pendingEvent) error {
	defer w.mu.Unlock()
	if err := w.put(ctx, now, ops.ops, problems); err != nil {
		return fmt.Errorf("correlation state not persisted: %w", err)
	}
	return nil
}

// writeImagesLocked writes the images the book took (holding w.mu for them, released here). It
// reports whether they were written; when not, the caller gives the incidents back their older
// firstSeq.
func (w *walLog) writeImagesLocked(ctx context.Context, now int64) bool {
	defer w.mu.Unlock()
	return w.put(ctx, now, w.compactOps.ops, nil) == nil
}

// put appends one entry of ops and problems at the next sequence number, holding w.mu. A failed
// write is counted.
func (w *walLog) put(ctx context.Context, now int64, ops []walOp, problems []pendingEvent) error {
	w.buf = appendWALEntry(w.buf[:0], now, ops, problems, w.rules)
	if err := w.client.Set(ctx, w.keyOf(w.next), w.buf); err != nil {
		w.telemetry.persistenceFailed(ctx, persistWrite, err)
		return err
	}
	w.appended(len(w.buf))
	return nil
}

// writeFlush writes the changes of flushes (emissions, closes) pending in w.flushOps, after their
// records went downstream. On error they stay pending for the next flush.
func (w *walLog) writeFlush(ctx context.Context, now int64) bool {
	if len(w.flushOps.ops) == 0 {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.put(ctx, now, w.flushOps.ops, nil) != nil {
		return false
	}
	w.flushOps.reset()
	return true
}

// nextSeq is the sequence number the next entry will get, read after every write in progress.
func (w *walLog) nextSeq() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// truncate deletes the entries below low and moves the head there, in one transaction.
func (w *walLog) truncate(ctx context.Context, low uint64) {
	if low <= w.head {
		return
	}
	const maxDeletes = 4096 // per flush: one transaction stays small; the rest go next time
	end := min(low, w.head+maxDeletes)
	w.deletes = w.deletes[:0]
	for seq := w.head; seq < end; seq++ {
		w.deletes = append(w.deletes, storage.DeleteOperation(w.keyOf(seq)))
	}
	var head [8]byte
	binary.BigEndian.PutUint64(head[:], end)
	w.deletes = append(w.deletes, storage.SetOperation(walHeadKey, head[:]))
	if err := w.client.Batch(ctx, w.deletes...); err != nil {
		w.telemetry.persistenceFailed(ctx, persistDelete, err)
		return
	}
	w.mu.Lock()
	gone := min(int(end-w.head), len(w.sizes))
	for _, n := range w.sizes[:gone] {
		w.bytes -= int64(n)
	}
	w.sizes = append(w.sizes[:0], w.sizes[gone:]...)
	w.mu.Unlock()
	w.head = end
}

// errWALLayout marks an entry written by a newer build.
var errWALLayout = errors.New("correlation state was written in a newer layout")

// replay reads every live entry in order and hands each to apply. An entry that does not decode
// is counted, logged and skipped; one of a newer layout stops the replay with an error, so that an
// older build never throws away what a newer one persisted.
func (w *walLog) replay(ctx context.Context, apply func(seq uint64, entry *walEntry)) error {
	head, err := w.client.Get(ctx, walHeadKey)
	if err != nil {
		w.telemetry.persistenceFailed(ctx, persistRead, err)
		return fmt.Errorf("storage: reading the correlation state: %w", err)
	}
	switch len(head) {
	case 0:
		w.head = 0
	case 8:
		w.head = binary.BigEndian.Uint64(head)
	default:
		w.telemetry.persistenceFailed(ctx, persistDecode, nil)
		return fmt.Errorf("storage: the correlation state's head key holds %d bytes, want 8: the storage directory holds something else", len(head))
	}
	ops := make([]*storage.Operation, replayBatch)
	var entry walEntry
	seq := w.head
	for {
		for i := range ops {
			ops[i] = storage.GetOperation(w.keyOf(seq + uint64(i)))
		}
		if err := w.client.Batch(ctx, ops...); err != nil {
			w.telemetry.persistenceFailed(ctx, persistRead, err)
			return fmt.Errorf("storage: reading correlation state entry %d: %w", seq, err)
		}
		for _, op := range ops {
			if op.Value == nil {
				w.next = seq
				return nil
			}
			w.sizes = append(w.sizes, uint32(len(op.Value)))
			w.bytes += int64(len(op.Value))
			if err := decodeWALEntry(op.Value, w.rules, &entry); err != nil {
				if errors.Is(err, errWALLayout) {
					w.telemetry.persistenceFailed(ctx, persistDecode, err)
					return fmt.Errorf("storage: correlation state entry %d: %w; run the build that wrote it, or delete the storage extension's directory to start empty", seq, err)
				}
				w.telemetry.persistenceFailed(ctx, persistDecode, err)
				w.logger.Error("correlation state entry does not decode: skipped, its events are not restored (counted in otelcol_connector_correlation_persistence_errors)",
					zap.Uint64("seq", seq), zap.Error(err))
			} else {
				apply(seq, &entry)
			}
			seq++
		}
	}
}
