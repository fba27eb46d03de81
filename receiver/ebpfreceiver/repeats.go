package ebpfreceiver

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
	"github.com/yairfalse/tapio/receiver/ebpfreceiver/internal/kernel"
)

// Repeat merging: a rate beyond a few thousand events per second comes from few processes
// repeating one failure — a refused-connect storm is one process, one peer, one errno, each
// connect from a fresh ephemeral port. Within a batch, such repeats become one record that says
// how many events it stands for (log_count) and when the first and last happened, as the
// collector-contrib logdedup processor writes them: a batch's cost follows what differs, not how
// often it repeats. Every other kind — exits, OOM kills, signals, listens, I/O — is one record per
// event: each is a fact of its own and none comes in storms from one process.

// mergeable reports the kinds whose repeats are merged: the connection failures.
func mergeable(k kernel.Kind) bool {
	switch k {
	case kernel.KindConnectionRefused, kernel.KindConnectionTimeout, kernel.KindConnectionReset:
		return true
	}
	return false
}

// repeatKey is everything a connection failure's record says but its event id, its timestamps
// and its ephemeral source port: two events of a batch with equal keys write the same record
// but for those. The group is the batch's resource (the process in its cgroup); the thread is on
// the record (thread.id); the socket holds the family, both addresses, the remote port, the
// network namespace, the errno (error.type), and for resets the direction and the side.
type repeatKey struct {
	group  int
	thread uint32
	kind   kernel.Kind
	socket kernel.Socket
}

// repeatKeyOf is the key of event e, of the batch's group group, with socket s.
func repeatKeyOf(group int, e *kernel.Event, s kernel.Socket) repeatKey {
	if s.Role != kernel.RoleServer {
		// The process connected: its local port is an ephemeral one, another for each connect.
		// On the server side the local port is the served one, and stays in the key.
		s.SourcePort = 0
	}
	return repeatKey{group: group, thread: e.Subject.PID, kind: e.Kind, socket: s}
}

// repeat is a record of the batch that later events with its key merge into.
type repeat struct {
	record      plog.LogRecord
	count       int64
	first, last pcommon.Timestamp
}

// openRepeat makes rec, just written for an event with key at when, the record its repeats in
// this batch merge into.
func (b *logBuilder) openRepeat(key repeatKey, rec plog.LogRecord, when time.Time) {
	ts := pcommon.NewTimestampFromTime(when)
	b.repeats = append(b.repeats, repeat{record: rec, count: 1, first: ts, last: ts})
	b.lastRepeat, b.lastRepeatKey = len(b.repeats)-1, key
	b.byRepeat[key] = b.lastRepeat
}

// repeatAgain merges an event with key at when into the batch's record of that key, if there
// is one, and reports whether it did.
func (b *logBuilder) repeatAgain(key repeatKey, when time.Time) bool {
	i := b.lastRepeat
	if i < 0 || key != b.lastRepeatKey {
		var ok bool
		if i, ok = b.byRepeat[key]; !ok {
			return false
		}
		b.lastRepeat, b.lastRepeatKey = i, key
	}
	r := &b.repeats[i]
	ts := pcommon.NewTimestampFromTime(when)
	r.count++
	// Records of different CPUs reach the ring buffer a little out of order.
	r.first, r.last = min(r.first, ts), max(r.last, ts)
	b.merged[key.kind]++
	return true
}

// closeRepeats writes each merged record's count and times, and forgets the batch's repeats.
func (b *logBuilder) closeRepeats() {
	for i := range b.repeats {
		r := &b.repeats[i]
		if r.count > 1 {
			r.record.SetTimestamp(r.first)
			unifiedevent.PutRepeats(r.record.Attributes(), r.count, r.first, r.last)
		}
	}
	clear(b.repeats) // nothing of this batch's pdata stays reachable from the builder
	b.repeats = b.repeats[:0]
	clear(b.byRepeat)
	b.lastRepeat = -1
}

// takeMerged returns the events merged since the last call, by kind, and starts over.
func (b *logBuilder) takeMerged() [kernel.KindCount]int64 {
	out := b.merged
	clear(b.merged[:])
	return out
}
