package correlationconnector

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// entries replays s and returns what it read, by sequence number.
func replayAll(t *testing.T, s *walSegments) (head uint64, got map[uint64]string, corrupt []uint64) {
	t.Helper()
	got = map[uint64]string{}
	head, err := s.replay(func(seq uint64, entry []byte) error {
		got[seq] = string(entry)
		return nil
	}, func(seq uint64, err error) { corrupt = append(corrupt, seq) })
	if err != nil {
		t.Fatal(err)
	}
	must(t, s.reopen())
	return head, got, corrupt
}

// reopened closes s and opens its directory again, as a restart does; the new one is closed at
// the test's end.
func reopened(t *testing.T, s *walSegments) *walSegments {
	t.Helper()
	must(t, s.close())
	s, err := openWALSegments(s.dir, false)
	must(t, err)
	t.Cleanup(func() { _ = s.close() })
	return s
}

func appendEntry(t *testing.T, s *walSegments, entry string) {
	t.Helper()
	frame := append(make([]byte, walFrameHeader), entry...)
	frameHeader(frame)
	must(t, s.append(frame))
}

func segmentNames(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*"+walSegmentExt))
	if err != nil {
		t.Fatal(err)
	}
	for i := range matches {
		matches[i] = filepath.Base(matches[i])
	}
	slices.Sort(matches)
	return matches
}

func TestWALSegmentsRoundTripAcrossSegmentsAndTruncation(t *testing.T) {
	dir := t.TempDir()
	s, err := openWALSegments(dir, false)
	must(t, err)
	s.segmentBytes = 64 // three 20-byte frames a segment
	for i := 0; i < 10; i++ {
		appendEntry(t, s, fmt.Sprintf("entry-%06d", i))
	}
	if names := segmentNames(t, dir); len(names) != 4 || names[1] != "0000000000000003.wal" {
		t.Fatalf("segments %v, want 4 starting at entries 0, 3, 6, 9", names)
	}
	must(t, s.truncate(7)) // entries 0-6 are no longer needed: segments 0 and 3 go, 6 stays
	if names := segmentNames(t, dir); len(names) != 2 || names[0] != "0000000000000006.wal" {
		t.Fatalf("after truncating to 7: segments %v", names)
	}
	s = reopened(t, s)
	head, got, corrupt := replayAll(t, s)
	if head != 7 || len(got) != 3 || got[7] != "entry-000007" || got[9] != "entry-000009" || len(corrupt) != 0 {
		t.Fatalf("replay: head %d, %v, corrupt %v; want entries 7-9 from head 7", head, got, corrupt)
	}
	appendEntry(t, s, "entry-000010")
	if s.next != 11 {
		t.Fatalf("next %d after an append past 9, want 11", s.next)
	}
}

// A crash in the middle of a write leaves part of a frame at the end of the last segment: the
// replay cuts it off, and appends go on after the last whole entry.
func TestWALSegmentsCutOffATornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := openWALSegments(dir, false)
	must(t, err)
	appendEntry(t, s, "first")
	appendEntry(t, s, "second")
	path := s.segments[0].path
	must(t, s.close())
	frame := append(make([]byte, walFrameHeader), "third, cut short"...)
	frameHeader(frame)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write(frame[:len(frame)-3])
	must(t, err)
	must(t, f.Close())

	s, err = openWALSegments(dir, false)
	must(t, err)
	_, got, corrupt := replayAll(t, s)
	if len(got) != 2 || got[1] != "second" || !slices.Equal(corrupt, []uint64{2}) {
		t.Fatalf("replay: %v, corrupt %v; want the two whole entries and entry 2 reported", got, corrupt)
	}
	appendEntry(t, s, "third")
	if _, got, corrupt := replayAll(t, reopened(t, s)); len(got) != 3 || got[2] != "third" || len(corrupt) != 0 {
		t.Fatalf("after the cut and an append: %v, corrupt %v", got, corrupt)
	}
}

// A flipped bit in an earlier segment loses the rest of that segment, not the log.
func TestWALSegmentsSkipADamagedSegmentRest(t *testing.T) {
	dir := t.TempDir()
	s, err := openWALSegments(dir, false)
	must(t, err)
	s.segmentBytes = 64
	for i := 0; i < 6; i++ {
		appendEntry(t, s, fmt.Sprintf("entry-%06d", i))
	}
	first := s.segments[0].path
	must(t, s.close())
	raw, err := os.ReadFile(first)
	must(t, err)
	raw[20+walFrameHeader+2] ^= 0x40 // inside entry 1
	must(t, os.WriteFile(first, raw, 0o600))

	s, err = openWALSegments(dir, false)
	must(t, err)
	defer s.close()
	_, got, corrupt := replayAll(t, s)
	want := map[uint64]string{0: "entry-000000", 3: "entry-000003", 4: "entry-000004", 5: "entry-000005"}
	if fmt.Sprint(got) != fmt.Sprint(want) || !slices.Equal(corrupt, []uint64{1}) {
		t.Fatalf("replay: %v, corrupt %v; want %v and entry 1 reported", got, corrupt, want)
	}
}

// A write that fails leaves nothing the replay would read, and the failed number is used again.
func TestWALSegmentsUndoAFailedWrite(t *testing.T) {
	dir := t.TempDir()
	s, err := openWALSegments(dir, false)
	must(t, err)
	appendEntry(t, s, "kept")
	failing := true
	s.file = halfWriter{s.file, &failing}
	frame := append(make([]byte, walFrameHeader), "failed"...)
	frameHeader(frame)
	if err := s.append(frame); !errors.Is(err, errDiskFull) {
		t.Fatalf("append on a full disk: %v", err)
	}
	failing = false
	appendEntry(t, s, "retried")
	if _, got, corrupt := replayAll(t, reopened(t, s)); len(got) != 2 || got[1] != "retried" || len(corrupt) != 0 {
		t.Fatalf("replay: %v, corrupt %v; want kept and retried", got, corrupt)
	}
}

type halfWriter struct {
	segmentFile
	failing *bool
}

func (h halfWriter) Write(p []byte) (int, error) {
	if *h.failing {
		n, _ := h.segmentFile.Write(p[:len(p)/2])
		return n, errDiskFull
	}
	return h.segmentFile.Write(p)
}
