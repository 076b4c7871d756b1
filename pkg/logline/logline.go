// Package logline reads a container log as the Kubernetes API serves it with timestamps=true: one
// line per entry, "<RFC3339Nano timestamp> <content>\n". Lines of any length are handed out in
// fragments so that memory stays bounded by the buffer size, never by a line.
package logline

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultBufferSize bounds the memory one reader holds; longer lines come in several fragments.
const DefaultBufferSize = 64 << 10

// Reader splits a log stream into lines and lines into fragments.
type Reader struct {
	br     *bufio.Reader
	inLine bool
	pooled bool
}

// buffers keeps the readers of DefaultBufferSize that streams released: a run over thousands of
// small logs would otherwise allocate (and zero, and collect) 64 KiB per stream.
var buffers sync.Pool

// minBufferSize keeps a whole timestamp prefix (at most 36 bytes) in a line's first fragment.
const minBufferSize = 64

// NewReader returns a Reader with a buffer of size bytes (DefaultBufferSize if size <= 0).
func NewReader(r io.Reader, size int) *Reader {
	if size <= 0 {
		size = DefaultBufferSize
	}
	size = max(size, minBufferSize)
	if size == DefaultBufferSize {
		if br, ok := buffers.Get().(*bufio.Reader); ok {
			br.Reset(r)
			return &Reader{br: br, pooled: true}
		}
		return &Reader{br: bufio.NewReaderSize(r, size), pooled: true}
	}
	return &Reader{br: bufio.NewReaderSize(r, size)}
}

// Release lets another Reader use the buffer. Neither r nor a fragment it returned may be used
// after.
func (r *Reader) Release() {
	if r.br == nil {
		return
	}
	if r.pooled {
		r.br.Reset(nil)
		buffers.Put(r.br)
	}
	r.br = nil
}

// Wait blocks until the stream has more to read, or has ended or failed (which the next call to
// Next reports).
func (r *Reader) Wait() { _, _ = r.br.Peek(1) }

// Fragment is a piece of one served line, as raw bytes (timestamp prefix and newline included).
type Fragment struct {
	// Data is valid until the next call to Next.
	Data []byte
	// First is set on the fragment that starts a line; it holds the timestamp prefix.
	First bool
	// Last is set on the fragment that ends a line with its newline.
	Last bool
}

// Next returns the next fragment. At the end of the stream it returns io.EOF; a line that the stream
// left unterminated comes before that as fragments with Last unset.
func (r *Reader) Next() (Fragment, error) {
	data, err := r.br.ReadSlice('\n')
	f := Fragment{Data: data, First: !r.inLine}
	switch {
	case err == nil:
		f.Last = true
		r.inLine = false
		return f, nil
	case errors.Is(err, bufio.ErrBufferFull):
		r.inLine = true
		return f, nil
	case len(data) > 0:
		// The stream ended (or failed) inside a line: hand out what came, report the error next time.
		r.inLine = true
		return f, nil
	default:
		return Fragment{}, err
	}
}

// ParseTimestamp parses the timestamp that starts a served line and returns it with the index
// where the content starts (after the single separating space).
func ParseTimestamp(line []byte) (time.Time, int, error) {
	end := 0
	for end < len(line) && line[end] != ' ' {
		end++
	}
	if end == len(line) {
		return time.Time{}, 0, fmt.Errorf("log line without timestamp: %q", truncate(line))
	}
	t, ok := parseRFC3339(line[:end])
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
func parseRFC3339(b []byte) (time.Time, bool) {
	// 2006-01-02T15:04:05[.fraction](Z|+hh:mm|-hh:mm)
	if len(b) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || b[4] != '-' || b[7] != '-' ||
		b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	i := 19
	nsec := 0
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
			return time.Time{}, false
		}
	}
	if i >= len(b) {
		return time.Time{}, false
	}
	offset := 0
	switch b[i] {
	case 'Z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return time.Time{}, false
		}
		oh, okh := digits(b[i+1 : i+3])
		om, okm := digits(b[i+4 : i+6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return time.Time{}, false
	}
	if i != len(b) {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
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
func (r *Reader) Buffered() int { return r.br.Buffered() }
