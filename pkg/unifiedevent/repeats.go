package unifiedevent

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Keys of a record that stands for repeats of one event, named as the collector-contrib
// logdedup processor names them, so that tools reading its output read these records too.
const (
	// KeyLogCount is how many events the record stands for; absent means one.
	KeyLogCount = "log_count"
	// KeyFirstObservedTimestamp and KeyLastObservedTimestamp are the times of the first and the
	// last of them, RFC 3339 in UTC.
	KeyFirstObservedTimestamp = "first_observed_timestamp"
	KeyLastObservedTimestamp  = "last_observed_timestamp"
)

// RepeatTimeLayout is how the first and last timestamps are written: RFC 3339 as logdedup writes
// them, with the fraction of a second, because repeats merged within one batch (a fraction of a
// second) would otherwise read as one instant. Any RFC 3339 parser reads it.
const RepeatTimeLayout = time.RFC3339Nano

// MaxLogCount bounds what a reader takes from log_count: a count beyond it (no batch holds that
// many events) is read as this. It fits 31 bits, as the connector's write-ahead log counts do.
const MaxLogCount = math.MaxInt32

var repeatKeySpecs = []KeySpec{
	{KeyLogCount, OnRecord, "how many events the record stands for, when more than one: repeats merged into it (logdedup's name; an integer ≥ 2, absent for one). Counters of events count a record as this many. Also on a correlation chain entry made from such a record"},
	{KeyFirstObservedTimestamp, OnRecord, "when the first of those events happened, RFC 3339 in UTC with the fraction of a second (logdedup's name); the record's Timestamp is the same instant"},
	{KeyLastObservedTimestamp, OnRecord, "when the last of them happened, same format"},
}

// PutRepeats marks attrs as standing for count events that happened from first to last. It
// writes nothing for a count below 2: a record stands for one event unless it says otherwise.
func PutRepeats(attrs pcommon.Map, count int64, first, last pcommon.Timestamp) {
	if count < 2 {
		return
	}
	attrs.EnsureCapacity(attrs.Len() + 3)
	attrs.PutInt(KeyLogCount, count)
	attrs.PutStr(KeyFirstObservedTimestamp, first.AsTime().UTC().Format(RepeatTimeLayout))
	attrs.PutStr(KeyLastObservedTimestamp, last.AsTime().UTC().Format(RepeatTimeLayout))
}

// RepeatCount is how many events a record with attrs stands for: its log_count (an integer, or
// what IntValue reads as one), else 1. A count below 1 or unreadable reads as 1 — the record is
// still an event — and one above MaxLogCount as MaxLogCount.
func RepeatCount(attrs pcommon.Map) int64 {
	n, ok := IntAttribute(attrs, KeyLogCount)
	switch {
	case !ok || n < 1:
		return 1
	case n > MaxLogCount:
		return MaxLogCount
	}
	return n
}
