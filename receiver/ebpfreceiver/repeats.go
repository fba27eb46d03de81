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

// addRepeats adds n more events like e that happened from first to last: merged into the
// batch's record of e's key when it has one, else into a new record that stands for them all.
func (b *logBuilder) addRepeats(e *kernel.Event, n int64, first, last time.Time) {
	b.group(&e.Subject)
	key := repeatKeyOf(b.last, e, e.Socket())
	i, ok := b.byRepeat[key]
	if !ok {
		b.add(e, first)
		i, n = b.lastRepeat, n-1
	}
	r := &b.repeats[i]
	r.count += n
	r.first = min(r.first, pcommon.NewTimestampFromTime(first))
	r.last = max(r.last, pcommon.NewTimestampFromTime(last))
	b.merged[key.kind] += n
	b.lastRepeat, b.lastRepeatKey = i, key
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

// failureRuns follows each CPU's run of a repeated connection failure, which the kernel counts
// instead of writing (emit_failure in bpf/tapio.bpf.c): a run's first event arrives as a record
// that starts it; the rest are counts, read from the kernel while the run lasts (FailureRuns)
// and, for its last part, from the record of the CPU's next run. Both are cumulative, so each is
// turned into the events not accounted for yet.
type failureRuns struct {
	byCPU []cpuRun            // as many as the kernel has possible CPUs
	read  []kernel.FailureRun // the last FailureRuns read, reused
}

func newFailureRuns(cpus int) failureRuns {
	return failureRuns{byCPU: make([]cpuRun, cpus)}
}

// cpuRun is what the reader knows of a CPU's current run.
type cpuRun struct {
	number uint32
	first  kernel.Event // the record that started it
	// accounted are the run's events already accounted for, until the one at accountedNs.
	accounted   uint32
	accountedNs uint64
}

// runRepeats are events a run counted and the reader has not accounted for yet.
type runRepeats struct {
	like         *kernel.Event // the run's first event, which they repeat
	n            uint32
	fromNs, toNs uint64 // they happened after fromNs, until toNs
}

// started takes record e, which starts a run (e.RunStart().Number != 0): it returns the ended run's
// events not yet accounted for (n is 0 when there are none) and makes e the CPU's run.
func (f *failureRuns) started(e *kernel.Event) runRepeats {
	start := e.RunStart()
	if int(start.CPU) >= len(f.byCPU) {
		return runRepeats{} // no CPU of this machine: a damaged record, whose run is not followed
	}
	run := &f.byCPU[start.CPU]
	var ended runRepeats
	if run.number != 0 && run.number+1 == start.Number && start.EndedEvents > run.accounted {
		// The ended run's record is copied out: run is about to hold the new one.
		like := run.first
		ended = runRepeats{like: &like, n: start.EndedEvents - run.accounted, fromNs: run.accountedNs, toNs: start.EndedLastNs}
	}
	*run = cpuRun{number: start.Number, first: *e, accounted: 1, accountedNs: e.KTimeNs}
	return ended
}

// counted reads the kernel's runs and calls visit with the events each counted since it was
// last read; a run whose record has not been read yet waits for it.
func (f *failureRuns) counted(programs *kernel.Programs, visit func(runRepeats)) error {
	var err error
	if f.read, err = programs.FailureRuns(f.read); err != nil {
		return err
	}
	for cpu, now := range f.read {
		if cpu >= len(f.byCPU) {
			break
		}
		run := &f.byCPU[cpu]
		if now.Number == 0 || now.Number != run.number || now.Events <= run.accounted {
			continue
		}
		visit(runRepeats{like: &run.first, n: now.Events - run.accounted, fromNs: run.accountedNs, toNs: now.LastNs})
		run.accounted, run.accountedNs = now.Events, now.LastNs
	}
	return nil
}
