// Package logline reads a container log as the Kubernetes API serves it with timestamps=true: one
// line per entry, "<RFC3339Nano timestamp> <content>\n". Lines of any length are handed out in
// fragments so that memory stays bounded by the buffer size, never by a line.
package logline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultBufferSize bounds the memory one reader holds; longer lines come in several fragments.
const DefaultBufferSize = 256 << 10

// SmallBufferSize is what a reader holds while lines come one by one: a reader starts with it and
// takes a larger buffer only for a line that does not fit or a stream that fills it (a backlog;
// not with NewLineReader), and gives that back with Idle. A follower keeps a stream open for each
// of thousands of containers that log a line now and then, each waiting with its buffer.
const SmallBufferSize = 4 << 10

// LineBufferSize is what a reader made by NewLineReader holds while it waits: a followed stream
// delivers a line or a few at a time, and a follower of a thousand containers waits in a thousand
// reads at once, each with its buffer (4 KiB each was a sixth of the follower's memory above
// its client's). A longer line grows the buffer (to 8 KiB, then 64) until Idle.
const LineBufferSize = 1 << 10

// growth is how much a buffer grows when it fills: from SmallBufferSize to 32 KiB, then to
// DefaultBufferSize. The step between is for the many logs of a few KiB (a run over 10,000 pods
// of 20 KiB each held and churned a 256 KiB buffer per stream, most of the run's memory).
const growth = 8

// Reader splits a log stream into lines and lines into fragments. It keeps its own buffer rather
// than a bufio.Reader's so that it can tell when the bytes it handed out stay where they are
// (Ready): a caller may then let work on them wait, and do it for many lines at once.
type Reader struct {
	src io.Reader
	// buf is *bp.
	bp   *[]byte
	buf  []byte
	r, w int // buf[r:w] is read and not handed out
	// nl is the index in buf of the newline that ends the next line, -1 if not found yet;
	// buf[r:scanned] has none.
	nl, scanned int
	err         error
	inLine      bool
	// size bounds the buffer (and so a fragment); start is the buffer a reader begins with and
	// goes back to when idle.
	size, start int
	// lineByLine: the buffer grows only for a line that does not fit (see NewLineReader).
	lineByLine bool
}

// pools keep the buffers of SmallBufferSize, growth times that, DefaultBufferSize,
// LineBufferSize and the two steps a line reader grows through (growth and growth² times that)
// that readers gave back: a run over thousands of small logs would otherwise allocate (and zero,
// and collect) a buffer for each stream, and a follower one for each line over LineBufferSize.
var pools [6]sync.Pool

// minBufferSize keeps a whole timestamp prefix (at most 36 bytes) in a line's first fragment.
const minBufferSize = 64

// maxEmptyReads is how many reads in a row may return nothing before the stream counts as stuck.
const maxEmptyReads = 100

// NewReader returns a Reader whose fragments are at most size bytes (DefaultBufferSize if
// size <= 0).
func NewReader(r io.Reader, size int) *Reader {
	if size <= 0 {
		size = DefaultBufferSize
	}
	size = max(size, minBufferSize)
	lr := &Reader{src: r, nl: -1, size: size, start: min(size, SmallBufferSize)}
	lr.take(lr.start)
	return lr
}

// NewLineReader is NewReader for a stream that delivers lines as they are logged (a followed
// one): its buffer grows only for a line that does not fit, not for a backlog that fills it. A
// follower that starts (or reconnects) with thousands of containers' backlogs at once would
// otherwise hold the full size for every one of them.
func NewLineReader(r io.Reader, size int) *Reader {
	lr := NewReader(r, size)
	lr.lineByLine = true
	if lr.start > LineBufferSize {
		lr.start = LineBufferSize
		lr.take(lr.start)
	}
	return lr
}

// pool is where buffers of n bytes are kept, nil for sizes not kept.
func pool(n int) *sync.Pool {
	switch n {
	case SmallBufferSize:
		return &pools[0]
	case SmallBufferSize * growth:
		return &pools[1]
	case DefaultBufferSize:
		return &pools[2]
	case LineBufferSize:
		return &pools[3]
	case LineBufferSize * growth:
		return &pools[4]
	case LineBufferSize * growth * growth:
		return &pools[5]
	}
	return nil
}

// grow gives the reader the next larger buffer, up to its size.
func (r *Reader) grow() { r.take(min(r.size, len(r.buf)*growth)) }

// take makes a buffer of n bytes the reader's, with what the old one had not handed out at its
// start. It moves the buffer's bytes.
func (r *Reader) take(n int) {
	var bp *[]byte
	if p := pool(n); p != nil {
		bp, _ = p.Get().(*[]byte)
	}
	if bp == nil {
		b := make([]byte, n)
		bp = &b
	}
	buf := *bp
	if r.bp != nil {
		r.w = copy(buf, r.buf[r.r:r.w])
		r.scanned = max(r.scanned-r.r, 0)
		r.nl, r.r = -1, 0
		r.give()
	}
	r.bp, r.buf = bp, buf
}

// give returns the reader's buffer to its pool.
func (r *Reader) give() {
	if p := pool(len(r.buf)); p != nil {
		p.Put(r.bp)
	}
	r.bp, r.buf = nil, nil
}

// Release lets another Reader use the buffer. Neither r nor a fragment it returned may be used
// after.
func (r *Reader) Release() {
	if r.bp == nil {
		return
	}
	r.give()
	r.src = nil
}

// Idle gives back a buffer larger than the one the reader started with when it holds nothing
// that was not handed out: the stream caught up, and the next line will likely fit the small
// one. Fragments returned before may not be used after.
func (r *Reader) Idle() {
	if r.r == r.w && len(r.buf) > r.start {
		r.r, r.w, r.scanned, r.nl = 0, 0, 0, -1
		r.take(r.start)
	}
}

// Wait blocks until the stream has more to read than the start of a line that the reader holds
// (if any), or has ended or failed (which the next call to Next reports); at once if Ready. Like a
// Next that is not Ready, it may move the buffer's bytes.
func (r *Reader) Wait() {
	if r.Ready() {
		return
	}
	if r.w-r.r == len(r.buf) {
		// Not Ready, so smaller than the longest line: room for the rest, as Next makes.
		r.grow()
	}
	r.fill()
}

// Fragment is a piece of one served line, as raw bytes (timestamp prefix and newline included).
type Fragment struct {
	// Data is valid until the next call to Next while Ready is false, or to Wait: the fragments
	// returned by calls to Next while Ready was true lie one after the other in the buffer.
	Data []byte
	// First is set on the fragment that starts a line; it holds the timestamp prefix.
	First bool
	// Last is set on the fragment that ends a line with its newline.
	Last bool
}

// newline returns the index in buf of the newline that ends the next line, or -1 if the buffered
// bytes hold none.
func (r *Reader) newline() int {
	if r.nl >= r.r {
		return r.nl
	}
	return r.scan()
}

// scan is newline when the next line's newline is not known yet.
func (r *Reader) scan() int {
	from := max(r.r, r.scanned)
	if i := bytes.IndexByte(r.buf[from:r.w], '\n'); i >= 0 {
		r.nl = from + i
		return r.nl
	}
	r.scanned = r.w
	return -1
}

// Ready tells whether the next call to Next returns without reading the stream, and so leaves
// the fragments handed out so far where they are.
func (r *Reader) Ready() bool {
	return r.newline() >= 0 || r.w-r.r == len(r.buf) && len(r.buf) == r.size || r.err != nil
}

// Next returns the next fragment. At the end of the stream it returns io.EOF; a line that the stream
// left unterminated comes before that as fragments with Last unset.
func (r *Reader) Next() (Fragment, error) {
	for {
		if i := r.newline(); i >= 0 {
			f := Fragment{Data: r.buf[r.r : i+1], First: !r.inLine, Last: true}
			r.r, r.inLine = i+1, false
			return f, nil
		}
		if r.w-r.r == len(r.buf) && len(r.buf) < r.size && r.err == nil {
			// A line longer than the buffer: a larger one.
			r.grow()
		}
		if r.w-r.r == len(r.buf) || r.err != nil && r.w > r.r {
			// A line longer than the buffer, or one the stream ended (or failed) inside: hand out
			// what came; the error, if any, comes next time.
			f := Fragment{Data: r.buf[r.r:r.w], First: !r.inLine}
			r.r, r.inLine = r.w, true
			return f, nil
		}
		if r.err != nil {
			return Fragment{}, r.err
		}
		r.fill()
	}
}

// fill moves the unread bytes to the front of the buffer and reads once into the rest. A read
// that fills all the space there was means that the stream has more waiting: the buffer grows
// (unless the reader goes line by line).
func (r *Reader) fill() {
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.scanned = max(r.scanned-r.r, 0)
		r.nl, r.r = -1, 0
	}
	for range maxEmptyReads {
		n, err := r.src.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			panic(errors.New("logline: reader returned an invalid count"))
		}
		r.w += n
		if err != nil {
			r.err = err
			return
		}
		if n > 0 {
			if r.w == len(r.buf) && len(r.buf) < r.size && !r.lineByLine {
				r.grow()
			}
			return
		}
	}
	r.err = io.ErrNoProgress
}

// ParseTimestamp parses the timestamp that starts a served line and returns it with the index
// where the content starts (after the single separating space).
func ParseTimestamp(line []byte) (time.Time, int, error) {
	var p Parser
	return p.Parse(line)
}

// Parser parses the timestamps of one stream. The lines of one second share their first 19 bytes
// (date and time of day), which it checks and converts once for all of them; what it accepts and
// returns is what ParseTimestamp does.
type Parser struct {
	// second holds the date and time of day last parsed, valid if set; wall is its Unix time
	// read as UTC.
	second [19]byte
	wall   int64
	set    bool
}

// Parse is ParseTimestamp.
func (p *Parser) Parse(line []byte) (time.Time, int, error) {
	end := bytes.IndexByte(line, ' ')
	if end < 0 {
		return time.Time{}, 0, fmt.Errorf("log line without timestamp: %q", truncate(line))
	}
	t, ok := p.parseRFC3339(line[:end])
	if !ok {
		return time.Time{}, 0, fmt.Errorf("log line with bad timestamp %q", truncate(line[:end]))
	}
	return t, end + 1, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// parseRFC3339 is time.Parse(time.RFC3339Nano, ...) for the shapes the kubelet and container
// runtimes write, without the allocations of converting the bytes to a string on every line.
func (p *Parser) parseRFC3339(b []byte) (time.Time, bool) {
	// 2006-01-02T15:04:05[.fraction](Z|+hh:mm|-hh:mm)
	if len(b) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	if !p.set || !sameSecond(b, &p.second) {
		wall, ok := parseSecond(b[:19])
		if !ok {
			return time.Time{}, false
		}
		copy(p.second[:], b[:19])
		p.wall, p.set = wall, true
	}
	nsec, offset, ok := parseZone(b[19:])
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(p.wall-int64(offset), int64(nsec)).UTC(), true
}

// sameSecond tells whether b starts with second: three loads and compares rather than a call
// to the runtime's comparison, on every line.
func sameSecond(b []byte, second *[19]byte) bool {
	_ = b[18]
	return binary.LittleEndian.Uint64(b) == binary.LittleEndian.Uint64(second[:]) &&
		binary.LittleEndian.Uint64(b[8:]) == binary.LittleEndian.Uint64(second[8:]) &&
		binary.LittleEndian.Uint32(b[15:]) == binary.LittleEndian.Uint32(second[15:])
}

// parseSecond reads 2006-01-02T15:04:05 as a Unix time in UTC.
func parseSecond(b []byte) (int64, bool) {
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || b[4] != '-' || b[7] != '-' ||
		b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix(), true
}

// parseZone reads what follows the seconds, [.fraction](Z|+hh:mm|-hh:mm), as nanoseconds and the
// zone's offset east of UTC in seconds.
func parseZone(b []byte) (nsec, offset int, ok bool) {
	if len(b) == len(".000000000Z") && b[0] == '.' && b[10] == 'Z' && b[9] >= '0' && b[9] <= '9' {
		// What the kubelet writes on every line, read at once.
		if n, ok := digits8(b[1:9]); ok {
			return n*10 + int(b[9]-'0'), 0, true
		}
	}
	i := 0
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		scale := 100000000
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if i-start < 9 {
				nsec += int(b[i]-'0') * scale
				scale /= 10
			}
			i++
		}
		if i == start || i-start > 9 {
			return 0, 0, false
		}
	}
	if i >= len(b) {
		return 0, 0, false
	}
	switch b[i] {
	case 'Z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return 0, 0, false
		}
		oh, okh := digits(b[i+1 : i+3])
		om, okm := digits(b[i+4 : i+6])
		if !okh || !okm || oh > 23 || om > 59 {
			return 0, 0, false
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, 0, false
	}
	if i != len(b) {
		return 0, 0, false
	}
	return nsec, offset, true
}

// digits8 is digits for 8 bytes, all at once in a word (what the fraction of nine digits of
// every line costs otherwise is a loop with a branch per digit).
func digits8(b []byte) (int, bool) {
	v := binary.LittleEndian.Uint64(b)
	// Each byte is a digit iff its high nibble is 3 and adding 6 to it leaves that nibble 3.
	if v&0xf0f0f0f0f0f0f0f0 != 0x3030303030303030 || (v+0x0606060606060606)&0xf0f0f0f0f0f0f0f0 != 0x3030303030303030 {
		return 0, false
	}
	v -= 0x3030303030303030
	// Pairs, then fours, then eight: the first byte is the most significant digit.
	v = (v*10 + v>>8) & 0x00ff00ff00ff00ff
	v = (v*100 + v>>16) & 0x0000ffff0000ffff
	v = (v*10000 + v>>32) & 0xffffffff
	return int(v), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// Partial tells whether the stream ended inside a line (after its last fragment came out).
func (r *Reader) Partial() bool { return r.inLine }

// Buffered is the number of bytes read from the stream and not yet handed out; zero means the
// next call to Next waits for the stream.
func (r *Reader) Buffered() int { return r.w - r.r }
