package correlationconnector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// walSegments is where the write-ahead log's entries live: appended to segment files in one
// directory, each entry framed with its length and a CRC-32C of its bytes. An append is one write
// call, so an entry survives a crash of the process as soon as the call returns (the kernel holds
// it; with fsync, a crash of the host too). A key-value store costs a transaction per entry —
// with file_storage's bbolt, a B+tree page rewrite and two writes, 30–50 µs per Consume call here,
// a fifth of what Tapio adds to healthy traffic — for what is only ever appended, read once at
// start and deleted from the front.
//
// A segment is named by the sequence number of its first entry, in 16 hex digits; entries follow
// one another without gaps. Truncation deletes whole segments below the head, and writes the head
// (the lowest live sequence number) to the file HEAD, so a replay starts exactly there.
//
// walSegments is not safe for concurrent use; walLog orders its calls.
type walSegments struct {
	dir   string
	fsync bool
	// segmentBytes is the size past which a new segment starts (tests lower it).
	segmentBytes int64

	lock     *os.File     // holds an exclusive flock on the directory's LOCK file
	segments []walSegment // oldest first; the last one is open for appends
	file     segmentFile  // the last segment, nil until the first append
	size     int64        // its size
	next     uint64       // the sequence number of the next entry
	// open opens a segment file for appending (os.OpenFile; tests wrap it).
	open func(path string) (segmentFile, error)
}

// segmentFile is what an append needs of a segment's file.
type segmentFile interface {
	io.Writer
	Truncate(size int64) error
	Sync() error
	Close() error
}

type walSegment struct {
	first uint64
	path  string
}

const (
	walSegmentBytes = 4 << 20
	walFrameHeader  = 8 // length, CRC-32C: 4 bytes each, little endian
	walSegmentExt   = ".wal"
	walHeadFile     = "HEAD"
	walLockFile     = "LOCK"
	// walMaxEntry bounds an entry read back: a length past it is a torn or foreign frame.
	walMaxEntry = 1 << 30
)

var walCRC = crc32.MakeTable(crc32.Castagnoli)

func appendFile(path string) (segmentFile, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// openWALSegments takes the directory (creating it) for one connector: another process holding
// it is an error, because two writers would interleave their entries.
func openWALSegments(dir string, fsync bool) (*walSegments, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("write_ahead_log: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, walLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write_ahead_log: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("write_ahead_log: directory %s is in use by another collector (or another correlation connector): %w", dir, err)
	}
	s := &walSegments{dir: dir, fsync: fsync, segmentBytes: walSegmentBytes, lock: lock, open: appendFile}
	entries, err := os.ReadDir(dir)
	if err != nil {
		_ = s.close()
		return nil, fmt.Errorf("write_ahead_log: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, walSegmentExt) || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, walSegmentExt), 16, 64)
		if err != nil {
			continue // not ours
		}
		s.segments = append(s.segments, walSegment{first: first, path: filepath.Join(dir, name)})
	}
	slices.SortFunc(s.segments, func(a, b walSegment) int { return cmpUint64(a.first, b.first) })
	return s, nil
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readHead returns the lowest live sequence number HEAD holds, 0 when there is none yet.
func (s *walSegments) readHead() (uint64, error) {
	raw, err := os.ReadFile(filepath.Join(s.dir, walHeadFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, err
	case len(raw) != 8:
		return 0, fmt.Errorf("%s holds %d bytes, want 8: the directory holds something else", walHeadFile, len(raw))
	}
	return binary.LittleEndian.Uint64(raw), nil
}

// replay hands every entry from the head on to apply, in order, and leaves the log ready for
// reopen. A frame that does not check out ends its segment: in the last segment it is the tail of
// a write a crash cut short and is cut off; in an earlier one the rest of that segment is lost,
// and reported through corrupt (the next segment goes on from its own first number). Entries of a
// segment at or past the next segment's first number are ones whose append failed and was given
// up: they are not read.
func (s *walSegments) replay(apply func(seq uint64, entry []byte) error, corrupt func(seq uint64, err error)) (head uint64, err error) {
	head, err = s.readHead()
	if err != nil {
		return 0, fmt.Errorf("write_ahead_log: %w", err)
	}
	s.next = head
	for i, seg := range s.segments {
		data, err := os.ReadFile(seg.path)
		if err != nil {
			return 0, fmt.Errorf("write_ahead_log: %w", err)
		}
		limit := uint64(1<<64 - 1)
		if i+1 < len(s.segments) {
			limit = s.segments[i+1].first
		}
		seq, off := seg.first, 0
		for off < len(data) && seq < limit {
			entry, n, ferr := readFrame(data[off:])
			if ferr != nil {
				corrupt(seq, fmt.Errorf("segment %s at byte %d: %w", filepath.Base(seg.path), off, ferr))
				if i == len(s.segments)-1 {
					if err := os.Truncate(seg.path, int64(off)); err != nil {
						return 0, fmt.Errorf("write_ahead_log: cutting off a torn entry: %w", err)
					}
				}
				break
			}
			if seq >= head {
				if err := apply(seq, entry); err != nil {
					return 0, err
				}
			}
			seq, off = seq+1, off+n
		}
		s.next = max(s.next, seq)
		if i == len(s.segments)-1 {
			s.size = int64(off)
		}
	}
	return head, nil
}

var (
	errShortFrame = errors.New("entry cut short")
	errBadFrame   = errors.New("entry does not match its checksum")
)

// readFrame reads one framed entry from the front of data.
func readFrame(data []byte) (entry []byte, n int, err error) {
	if len(data) < walFrameHeader {
		return nil, 0, errShortFrame
	}
	size := binary.LittleEndian.Uint32(data)
	if size > walMaxEntry {
		return nil, 0, errBadFrame
	}
	end := walFrameHeader + int(size)
	if len(data) < end {
		return nil, 0, errShortFrame
	}
	entry = data[walFrameHeader:end]
	if crc32.Checksum(entry, walCRC) != binary.LittleEndian.Uint32(data[4:]) {
		return nil, 0, errBadFrame
	}
	return entry, end, nil
}

// frameHeader fills the first walFrameHeader bytes of frame for the entry that follows them.
func frameHeader(frame []byte) {
	entry := frame[walFrameHeader:]
	binary.LittleEndian.PutUint32(frame, uint32(len(entry)))
	binary.LittleEndian.PutUint32(frame[4:], crc32.Checksum(entry, walCRC))
}

// append writes one framed entry (frameHeader done) as the next sequence number. A write that
// fails is undone, so that the next append does not follow a torn frame; when it cannot be
// undone, the segment is given up and the next append starts a new one.
func (s *walSegments) append(frame []byte) error {
	if s.file == nil || s.size+int64(len(frame)) > s.segmentBytes && s.size > 0 {
		if err := s.startSegment(); err != nil {
			return err
		}
	}
	_, err := s.file.Write(frame)
	if err == nil && s.fsync {
		err = s.file.Sync()
	}
	if err != nil {
		// The caller fails its call and the sender sends it again: the entry must not be read
		// at start besides the one the retry writes.
		if terr := s.file.Truncate(s.size); terr != nil {
			s.giveUpSegment()
		}
		return err
	}
	s.size += int64(len(frame))
	s.next++
	return nil
}

// giveUpSegment stops appending to the open segment, whose tail may hold an entry that failed:
// the next append starts a segment at the same number, and a replay stops reading this one there.
func (s *walSegments) giveUpSegment() {
	_ = s.file.Close()
	s.file = nil
}

// startSegment closes the open segment and starts one whose first entry is the next.
func (s *walSegments) startSegment() error {
	if s.file != nil {
		if err := s.file.Close(); err != nil {
			return err
		}
		s.file = nil
	}
	path := filepath.Join(s.dir, fmt.Sprintf("%016x%s", s.next, walSegmentExt))
	if last := len(s.segments) - 1; last >= 0 && s.segments[last].path == path {
		// The last segment holds no entry yet (it was given up after a failed write, or found
		// empty at start): start it over.
		if err := os.Truncate(path, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		s.segments = s.segments[:last]
	}
	f, err := s.open(path)
	if err != nil {
		return err
	}
	s.file, s.size = f, 0
	s.segments = append(s.segments, walSegment{first: s.next, path: path})
	return nil
}

// reopen continues the last segment after a replay, if it has room.
func (s *walSegments) reopen() error {
	last := len(s.segments) - 1
	if last < 0 || s.size >= s.segmentBytes {
		return nil
	}
	f, err := s.open(s.segments[last].path)
	if err != nil {
		return err
	}
	s.file = f
	return nil
}

// truncate makes head the lowest live sequence number: HEAD is rewritten (a new file renamed over
// the old), then the segments wholly below head are deleted.
func (s *walSegments) truncate(head uint64) error {
	tmp := filepath.Join(s.dir, walHeadFile+".new")
	var raw [8]byte
	binary.LittleEndian.PutUint64(raw[:], head)
	if err := os.WriteFile(tmp, raw[:], 0o600); err != nil {
		return err
	}
	if s.fsync {
		if err := syncFile(tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, walHeadFile)); err != nil {
		return err
	}
	// Segment i is wholly below head when the next one starts at or below head; the open one
	// always stays.
	drop := 0
	for drop+1 < len(s.segments) && s.segments[drop+1].first <= head {
		if err := os.Remove(s.segments[drop].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			break
		}
		drop++
	}
	s.segments = append(s.segments[:0], s.segments[drop:]...)
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// close closes the open segment and releases the directory.
func (s *walSegments) close() error {
	var errs []error
	if s.file != nil {
		errs = append(errs, s.file.Close())
		s.file = nil
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // closing the descriptor releases the flock
		s.lock = nil
	}
	return errors.Join(errs...)
}
