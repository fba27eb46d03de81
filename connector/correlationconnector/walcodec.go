package correlationconnector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/yairfalse/tapio/pkg/unifiedevent"
)

// The encoding of write-ahead log entries: the connector's own state, not a record other
// components read (those use pkg/unifiedevent's codecs). An entry is
//
//	layout byte | now varint | op count uvarint | ops
//
// and each op is its kind byte followed by its fields; a join op carries its event inline. Strings
// are a uvarint length and the bytes; integers are varints.

// walEntry is a decoded entry. Its slices are reused by the next decode.
type walEntry struct {
	now    int64
	ops    []walOp
	events []problemEvent
}

// Flags of an encoded event.
const (
	evEventID uint8 = 1 << iota
	evTrace
	evSpan
	evParent
	evDetails
	evBreach
	evIsSpan
	evRepeats // a merged record's repeats follow, uvarint
)

// appendWALEntry encodes the ops of one call or flush; a join op's event is problems[op.event].
// The ops are encoded first and their count put in front of them after, so that the counted
// classes are sorted out once.
func appendWALEntry(buf []byte, now int64, ops []walOp, problems []pendingEvent, rules []ThresholdRule) []byte {
	buf = append(buf, walLayout)
	buf = binary.AppendVarint(buf, now)
	countAt := len(buf)
	var classes countedClasses
	encoded := 0
	for i := 0; i < len(ops); {
		op := &ops[i]
		if end, n := classes.segment(ops, problems, i); n > 0 {
			for _, c := range classes.of[:n] {
				first := &ops[c.first]
				if c.count == 1 {
					buf = append(buf, byte(walOpJoin), first.flags)
					buf = appendString(buf, first.id)
					buf = appendWALEvent(buf, &problems[first.event].problemEvent, rules)
					continue
				}
				// One event stands for its class, at the class's latest time; the op's count
				// is the class's events, its merged records' repeats included.
				e := problems[first.event].problemEvent
				e.time, e.repeats = c.latest, 0
				buf = append(buf, byte(walOpCount))
				buf = appendString(buf, first.id)
				buf = binary.AppendUvarint(buf, uint64(c.count))
				buf = appendWALEvent(buf, &e, rules)
			}
			encoded, i = encoded+n, end
			continue
		}
		encoded, i = encoded+1, i+1
		buf = append(buf, byte(op.kind))
		switch op.kind {
		case walOpJoin:
			buf = append(buf, op.flags)
			buf = appendString(buf, op.id)
			buf = appendWALEvent(buf, &problems[op.event].problemEvent, rules)
		case walOpMerge:
			buf = append(buf, op.flags)
			buf = appendString(buf, op.id)
			buf = appendString(buf, op.other)
		case walOpEmit:
			buf = appendString(buf, op.id)
			buf = binary.AppendVarint(buf, op.version)
			buf = binary.AppendVarint(buf, op.count)
		case walOpEvict, walOpClose:
			buf = appendString(buf, op.id)
		case walOpImage:
			buf = appendString(buf, op.id)
			buf = appendWALImage(buf, op.image, rules)
		}
	}
	var count [binary.MaxVarintLen64]byte
	return slices.Insert(buf, countAt, count[:binary.PutUvarint(count[:], uint64(encoded))]...)
}

// maxCountedClasses bounds the classes of one segment; a segment with more ends at the first
// event of one more class.
const maxCountedClasses = 8

// countedClass is the events of a segment that bind the same keys (bindsAlike): its first op,
// how many, and the latest time among them.
type countedClass struct {
	first  int
	count  int
	latest int64
}

type countedClasses struct {
	of [maxCountedClasses]countedClass
}

// segment finds the segment of ops that starts at i — consecutive joins of one incident that
// neither opened it nor were kept — and sorts its events into classes of events that bind alike.
// Each class is encoded as one op (walOpCount): replaying a class at its latest time leaves the
// incident's count, bindings and clocks as replaying its events one by one does, because within
// a segment nothing but these joins touches the incident, and an event not kept binds no new
// trace (a trace binding's time decides nothing). It returns the segment's end and the number of
// classes, 0 when op i starts no segment.
func (cs *countedClasses) segment(ops []walOp, problems []pendingEvent, i int) (end, n int) {
	if !countedJoin(&ops[i]) {
		return i, 0
	}
	id := ops[i].id
	for end = i; end < len(ops) && countedJoin(&ops[end]) && ops[end].id == id; end++ {
		e := &problems[ops[end].event].problemEvent
		k := 0
		for k < n && !bindsAlike(&problems[ops[cs.of[k].first].event].problemEvent, e) {
			k++
		}
		if k < n && cs.of[k].count+e.events() > math.MaxInt32 {
			break // a class's count fits the 31 bits a counted run is read with
		}
		if k == n {
			if n == maxCountedClasses {
				break
			}
			cs.of[n] = countedClass{first: end, latest: e.time}
			n++
		}
		c := &cs.of[k]
		c.count += e.events()
		c.latest = max(c.latest, e.time)
	}
	return end, n
}

func countedJoin(op *walOp) bool { return op.kind == walOpJoin && op.flags == 0 }

// bindsAlike reports whether two events have the same keys but for their traces, and the same
// say in whether their incident is one (makesIncident).
func bindsAlike(a, b *problemEvent) bool {
	if a.breach != nil || b.breach != nil {
		return false // exemplars are trace keys of their own
	}
	fa, fb := a.facts(), b.facts()
	return a.name == b.name && a.layer == b.layer && a.class == b.class &&
		a.entity == b.entity && a.service == b.service && a.pod == b.pod &&
		a.peerAddr == b.peerAddr && a.peerPort == b.peerPort && a.peerTarget == b.peerTarget &&
		fa.peerScope == fb.peerScope && fa.host == fb.host && fa.sender == fb.sender
}

// Flags of an encoded image.
const (
	imgDirty uint8 = 1 << iota
	imgEligible
)

func appendWALImage(buf []byte, img *incidentImage, rules []ThresholdRule) []byte {
	var flags uint8
	if img.dirty {
		flags |= imgDirty
	}
	if img.eligible {
		flags |= imgEligible
	}
	buf = append(buf, flags)
	for _, v := range [...]int64{img.version, img.lastEvidence, img.dirtySince, img.eventCount, img.told} {
		buf = binary.AppendVarint(buf, v)
	}
	buf = binary.AppendUvarint(buf, uint64(len(img.mergedIDs)))
	for _, id := range img.mergedIDs {
		buf = appendString(buf, id)
	}
	buf = binary.AppendUvarint(buf, uint64(len(img.events)))
	for i := range img.events {
		buf = appendWALEvent(buf, &img.events[i], rules)
	}
	buf = binary.AppendUvarint(buf, uint64(len(img.keys)))
	for _, k := range img.keys {
		buf = append(buf, byte(k.key.kind))
		if k.key.kind == keyTrace {
			buf = append(buf, k.key.trace[:]...)
		} else {
			buf = appendString(buf, k.key.name)
			buf = binary.AppendVarint(buf, k.key.port)
			buf = appendString(buf, k.key.scope)
		}
		buf = binary.AppendVarint(buf, k.last)
	}
	return buf
}

func decodeWALImage(r *walReader, rules []ThresholdRule) *incidentImage {
	img := &incidentImage{}
	flags := r.byte()
	if flags >= imgEligible<<1 {
		r.fail(fmt.Errorf("unknown image flags %#x", flags))
	}
	img.dirty, img.eligible = flags&imgDirty != 0, flags&imgEligible != 0
	for _, v := range [...]*int64{&img.version, &img.lastEvidence, &img.dirtySince, &img.eventCount, &img.told} {
		*v = r.varint()
	}
	if r.err == nil && (img.version < 0 || img.eventCount < 0 || img.told < 0) {
		r.fail(fmt.Errorf("image with version %d, event count %d, told %d", img.version, img.eventCount, img.told))
	}
	n := r.count(1)
	for i := 0; i < n && r.err == nil; i++ {
		img.mergedIDs = append(img.mergedIDs, r.string())
	}
	n = r.count(4)
	for i := 0; i < n && r.err == nil; i++ {
		var e problemEvent
		decodeWALEvent(r, &e, rules)
		img.events = append(img.events, e)
	}
	if r.err == nil && (img.told > int64(len(img.events)) || img.eventCount < int64(len(img.events))) {
		r.fail(fmt.Errorf("image of %d events with event count %d, told %d", len(img.events), img.eventCount, img.told))
	}
	n = r.count(3)
	for i := 0; i < n && r.err == nil; i++ {
		var k boundKey
		k.key.kind = keyKind(r.byte())
		switch {
		case r.err != nil:
		case k.key.kind == keyTrace:
			r.bytes(k.key.trace[:])
		case k.key.kind > keyTrace && k.key.kind <= keyHostDisk:
			k.key.name = r.string()
			k.key.port = r.varint()
			k.key.scope = r.string()
		default:
			r.fail(fmt.Errorf("unknown key kind %d", k.key.kind))
		}
		k.last = r.varint()
		img.keys = append(img.keys, k)
	}
	return img
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendWALEvent(buf []byte, e *problemEvent, rules []ThresholdRule) []byte {
	var flags uint8
	if e.hasEventID {
		flags |= evEventID
	}
	if !e.trace.IsEmpty() {
		flags |= evTrace
	}
	if !e.span.IsEmpty() {
		flags |= evSpan
	}
	if !e.parent.IsEmpty() {
		flags |= evParent
	}
	if e.details != nil {
		flags |= evDetails
	}
	if e.breach != nil {
		flags |= evBreach
	}
	if e.isSpan {
		flags |= evIsSpan
	}
	if e.repeats != 0 {
		flags |= evRepeats
	}
	buf = append(buf, flags)
	buf = binary.AppendVarint(buf, e.time)
	if flags&evEventID != 0 {
		buf = append(buf, e.eventID[:]...)
	}
	if flags&evTrace != 0 {
		buf = append(buf, e.trace[:]...)
	}
	if flags&evSpan != 0 {
		buf = append(buf, e.span[:]...)
	}
	if flags&evParent != 0 {
		buf = append(buf, e.parent[:]...)
	}
	buf = appendString(buf, string(e.name))
	buf = append(buf, byte(e.layer), byte(e.class), byte(e.joinReason), byte(e.peerVia))
	buf = binary.AppendVarint(buf, int64(e.peerPort))
	if flags&evRepeats != 0 {
		buf = binary.AppendUvarint(buf, uint64(e.repeats))
	}
	for _, s := range [...]string{e.entity, e.service, e.pod, e.peerAddr, e.peerTarget, e.narrative} {
		buf = appendString(buf, s)
	}
	if d := e.details; d != nil {
		buf = append(buf, byte(d.kind))
		buf = binary.AppendVarint(buf, int64(d.httpStatus))
		buf = binary.AppendVarint(buf, d.duration)
		for _, s := range [...]string{d.route, d.spanName, d.errorType, d.endUser, d.user, d.session, d.peerScope, d.dbSystem, d.host, d.sender} {
			buf = appendString(buf, s)
		}
	}
	if br := e.breach; br != nil {
		// The rule by name: a restart may come with the rules reordered.
		name := ""
		if br.rule >= 0 && br.rule < len(rules) {
			name = rules[br.rule].Name
		}
		buf = appendString(buf, name)
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(br.value))
		buf = binary.AppendUvarint(buf, uint64(len(br.exemplars)))
		for _, t := range br.exemplars {
			buf = append(buf, t[:]...)
		}
	}
	return buf
}

// walReader reads an entry front to back; the first error sticks and every later read returns
// zero values.
type walReader struct {
	data []byte
	err  error
}

var errWALTruncated = errors.New("entry ends early")

func (r *walReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *walReader) byte() byte {
	if r.err != nil || len(r.data) < 1 {
		r.fail(errWALTruncated)
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return b
}

func (r *walReader) bytes(into []byte) {
	if r.err != nil || len(r.data) < len(into) {
		r.fail(errWALTruncated)
		return
	}
	copy(into, r.data)
	r.data = r.data[len(into):]
}

func (r *walReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.data)
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.data = r.data[n:]
	return v
}

func (r *walReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.data)
	if n <= 0 {
		r.fail(errors.New("bad uvarint"))
		return 0
	}
	r.data = r.data[n:]
	return v
}

// int32 reads a varint that must fit 32 bits.
func (r *walReader) int32() int32 {
	v := r.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail(fmt.Errorf("value %d out of range", v))
		return 0
	}
	return int32(v)
}

func (r *walReader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.data)) {
		r.fail(errWALTruncated)
		return ""
	}
	s := string(r.data[:n])
	r.data = r.data[n:]
	return s
}

// count reads a length that needs at least min bytes per element.
func (r *walReader) count(min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.data)/min) {
		r.fail(fmt.Errorf("count %d larger than the entry", n))
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

// decodeWALEntry decodes data into entry, reusing its slices. rules resolve threshold rule names.
func decodeWALEntry(data []byte, rules []ThresholdRule, entry *walEntry) error {
	clear(entry.ops)
	clear(entry.events)
	entry.ops, entry.events = entry.ops[:0], entry.events[:0]
	if len(data) == 0 {
		return errors.New("empty entry")
	}
	if data[0] != walLayout {
		if data[0] > walLayout {
			return fmt.Errorf("%w: layout %d, this build reads %d", errWALLayout, data[0], walLayout)
		}
		return fmt.Errorf("unknown layout %d", data[0])
	}
	r := walReader{data: data[1:]}
	entry.now = r.varint()
	n := r.count(2)
	for i := 0; i < n && r.err == nil; i++ {
		op := walOp{kind: walOpKind(r.byte())}
		switch op.kind {
		case walOpJoin:
			op.flags = r.byte()
			op.id = r.string()
			var e problemEvent
			decodeWALEvent(&r, &e, rules)
			op.event = int32(len(entry.events))
			entry.events = append(entry.events, e)
		case walOpCount:
			op.id = r.string()
			if n := r.uvarint(); r.err == nil && (n < 2 || n > math.MaxInt32) {
				r.fail(fmt.Errorf("a counted run of %d events", n))
			} else {
				op.count = int64(n)
			}
			var e problemEvent
			decodeWALEvent(&r, &e, rules)
			op.event = int32(len(entry.events))
			entry.events = append(entry.events, e)
		case walOpMerge:
			op.flags = r.byte()
			op.id = r.string()
			op.other = r.string()
		case walOpEmit:
			op.id = r.string()
			op.version = r.varint()
			op.count = r.varint()
		case walOpEvict, walOpClose:
			op.id = r.string()
		case walOpImage:
			op.id = r.string()
			op.image = decodeWALImage(&r, rules)
		default:
			r.fail(fmt.Errorf("unknown op %d", op.kind))
		}
		if r.err == nil && op.id == "" {
			r.fail(fmt.Errorf("op %d names no incident", op.kind))
		}
		entry.ops = append(entry.ops, op)
	}
	if r.err == nil && len(r.data) != 0 {
		r.fail(fmt.Errorf("%d bytes after the last op", len(r.data)))
	}
	if r.err != nil {
		return fmt.Errorf("op %d: %w", len(entry.ops), r.err)
	}
	return nil
}

func decodeWALEvent(r *walReader, e *problemEvent, rules []ThresholdRule) {
	flags := r.byte() // every bit is a flag (evEventID … evRepeats): none is unknown
	e.time = r.varint()
	if flags&evEventID != 0 {
		r.bytes(e.eventID[:])
		e.hasEventID = true
	}
	if flags&evTrace != 0 {
		r.bytes(e.trace[:])
	}
	if flags&evSpan != 0 {
		r.bytes(e.span[:])
	}
	if flags&evParent != 0 {
		r.bytes(e.parent[:])
	}
	e.isSpan = flags&evIsSpan != 0
	name := r.string()
	if r.err == nil {
		def, ok := unifiedevent.Lookup(name)
		if !ok || !def.Problem {
			r.fail(fmt.Errorf("event name %q is not a problem event of the catalogue", name))
		}
		e.name = def.Name
	}
	e.layer = unifiedevent.Layer(r.byte())
	e.class = eventClass(r.byte())
	e.joinReason = linkReason(r.byte())
	e.peerVia = peerSource(r.byte())
	if r.err == nil && (int(e.layer) >= unifiedevent.LayerCount || e.joinReason >= linkReasonCount || int(e.peerVia) >= len(peerSourceWords)) {
		r.fail(fmt.Errorf("layer %d, join reason %d or peer source %d out of range", e.layer, e.joinReason, e.peerVia))
	}
	e.peerPort = r.int32()
	if flags&evRepeats != 0 {
		if n := r.uvarint(); r.err == nil && (n == 0 || n > unifiedevent.MaxLogCount-1) {
			r.fail(fmt.Errorf("an event standing for %d more", n))
		} else {
			e.repeats = uint32(n)
		}
	}
	e.entity = r.string()
	e.service = r.string()
	e.pod = r.string()
	e.peerAddr = r.string()
	e.peerTarget = r.string()
	e.narrative = r.string()
	if flags&evDetails != 0 {
		d := &eventDetails{}
		d.kind = ptrace.SpanKind(r.byte())
		if r.err == nil && d.kind > ptrace.SpanKindConsumer {
			r.fail(fmt.Errorf("span kind %d out of range", d.kind))
		}
		d.httpStatus = r.int32()
		d.duration = r.varint()
		for _, s := range [...]*string{&d.route, &d.spanName, &d.errorType, &d.endUser, &d.user, &d.session, &d.peerScope, &d.dbSystem, &d.host, &d.sender} {
			*s = r.string()
		}
		e.details = d
	}
	if flags&evBreach != 0 {
		name := r.string()
		var bits [8]byte
		r.bytes(bits[:])
		br := &breachFacts{rule: -1, value: math.Float64frombits(binary.BigEndian.Uint64(bits[:]))}
		n := r.count(16)
		if n > maxExemplarTraces {
			r.fail(fmt.Errorf("%d exemplar traces, at most %d", n, maxExemplarTraces))
			n = 0
		}
		if n > 0 {
			br.exemplars = make([]pcommon.TraceID, n)
			for i := range br.exemplars {
				r.bytes(br.exemplars[i][:])
			}
		}
		for i := range rules {
			if rules[i].Name == name {
				br.rule = i
			}
		}
		if br.rule >= 0 {
			e.breach = br
		}
		// A breach of a rule no longer configured stays an event, without the rule's facts.
	}
}
