package correlationconnector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"
)

// The write-ahead log keeps the open correlation state through a crash of the collector. Each
// Consume call that takes problem events into incidents writes one entry before it returns: the
// events, each with the incident it ended in, and the merges and evictions the call made. Each
// flush that emitted or closed incidents writes one entry after the records went downstream. At
// start the entries are replayed in order (replay.go) and the incidents come back with their ids,
// versions and evidence; the first flush then emits what is due. Entries below the oldest one an
// open incident still needs are dropped at each flush. The entries live in segment files of the
// connector's own directory (walfile.go). Sequence numbers are contiguous from the head: a write
// that fails does not use up its number.

const (
	// walLayout is the version of the entry encoding. A build refuses entries of a newer layout
	// (written by a newer build) rather than guess at them.
	walLayout byte = 1
	// unassignedSeq marks an incident opened by a call whose entry has no sequence number yet.
	unassignedSeq = math.MaxUint64
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

// walLog writes and replays the entries of the incident book's changes.
type walLog struct {
	telemetry *selfTelemetry
	logger    *zap.Logger
	rules     []ThresholdRule
	// compactBytes is walCompactBytes (tests lower it).
	compactBytes int64

	// mu orders appends: the book takes it before releasing its own lock, so entries are
	// numbered in the order the book made their changes. It guards everything below but head
	// and the ops.
	mu       sync.Mutex
	segments *walSegments // the files; segments.next is the sequence number of the next entry
	buf      []byte       // the entry being encoded, in its frame
	sizes    []uint32     // of the live entries, head first
	bytes    int64        // their sum

	// Owned by the flush loop (and by Shutdown's final flush, after the loop stopped).
	head       uint64 // the lowest live sequence number
	flushOps   walOps // changes of flushes not yet written: a failed write is retried by the next
	compactOps walOps
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
	w.sizes = append(w.sizes, uint32(size))
	w.bytes += int64(size)
}

// nextLocked is the sequence number the next entry will get; it runs under w.mu.
func (w *walLog) nextLocked() uint64 { return w.segments.next }

// liveBytes is the size of the live entries.
func (w *walLog) liveBytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bytes
}

// openWAL takes the log's directory: dir/<component id>, so that connectors of one collector
// sharing a directory setting keep apart.
func openWAL(cfg WriteAheadLogConfig, self component.ID, st *selfTelemetry, logger *zap.Logger, rules []ThresholdRule) (*walLog, error) {
	dir := filepath.Join(cfg.Directory, strings.ReplaceAll(self.String(), "/", "_"))
	segments, err := openWALSegments(dir, cfg.FSync)
	if err != nil {
		return nil, err
	}
	return &walLog{segments: segments, telemetry: st, logger: logger, rules: rules, compactBytes: walCompactBytes}, nil
}

func (w *walLog) close(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.segments.close()
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
	w.buf = appendWALEntry(append(w.buf[:0], make([]byte, walFrameHeader)...), now, ops, problems, w.rules)
	frameHeader(w.buf)
	if err := w.segments.append(w.buf); err != nil {
		w.telemetry.persistenceFailed(ctx, persistWrite, err)
		return err
	}
	w.appended(len(w.buf) - walFrameHeader)
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
	return w.nextLocked()
}

// truncate makes low the head: entries below it are no longer read at start, and the segments
// that hold only such entries are deleted.
func (w *walLog) truncate(ctx context.Context, low uint64) {
	if low <= w.head {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.segments.truncate(low); err != nil {
		w.telemetry.persistenceFailed(ctx, persistDelete, err)
		return
	}
	gone := min(int(low-w.head), len(w.sizes))
	for _, n := range w.sizes[:gone] {
		w.bytes -= int64(n)
	}
	w.sizes = append(w.sizes[:0], w.sizes[gone:]...)
	w.head = low
}

// errWALLayout marks an entry written by a newer build.
var errWALLayout = errors.New("correlation state was written in a newer layout")

// replay reads every live entry in order and hands each to apply, then readies the log for
// appends. An entry that does not decode, or whose frame a crash cut short, is counted, logged
// and skipped; one of a newer layout stops the replay with an error, so that an older build never
// throws away what a newer one persisted. It runs at Start, before any Consume call or flush, and
// takes no lock: apply takes the book's, which is otherwise taken before w.mu.
func (w *walLog) replay(ctx context.Context, apply func(seq uint64, entry *walEntry)) error {
	var entry walEntry
	head, err := w.segments.replay(func(seq uint64, data []byte) error {
		w.sizes = append(w.sizes, uint32(len(data)))
		w.bytes += int64(len(data))
		if err := decodeWALEntry(data, w.rules, &entry); err != nil {
			w.telemetry.persistenceFailed(ctx, persistDecode, err)
			if errors.Is(err, errWALLayout) {
				return fmt.Errorf("write_ahead_log: correlation state entry %d: %w; run the build that wrote it, or delete %s to start empty", seq, err, w.segments.dir)
			}
			w.logger.Error("correlation state entry does not decode: skipped, its events are not restored (counted in otelcol_connector_correlation_persistence_errors)",
				zap.Uint64("seq", seq), zap.Error(err))
			return nil
		}
		apply(seq, &entry)
		return nil
	}, func(seq uint64, err error) {
		w.telemetry.persistenceFailed(ctx, persistDecode, err)
		w.logger.Error("correlation state entry cut short or damaged (a crash during its write, or a damaged disk): it and the rest of its segment are not restored (counted in otelcol_connector_correlation_persistence_errors)",
			zap.Uint64("seq", seq), zap.Error(err))
	})
	if err != nil {
		if !errors.Is(err, errWALLayout) { // counted as a decode error where it was met
			w.telemetry.persistenceFailed(ctx, persistRead, err)
		}
		return err
	}
	w.head = head
	if err := w.segments.reopen(); err != nil {
		w.telemetry.persistenceFailed(ctx, persistRead, err)
		return fmt.Errorf("write_ahead_log: %w", err)
	}
	return nil
}
