package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// break14Buf is the size of drain's pooled buffer, the most it may hand w at once.
const break14Buf = 256 << 10

// break14Reader serves data[:end] as the io.Reader contract allows a body to: reads of random
// sizes (a byte, a few KiB, more than the buffer holds), some of 0 bytes with a nil error, the
// last data alone or together with the final error (io.EOF, or err at end when end < len(data)),
// and p beyond what it returns scribbled with '\n' (Read may use all of p as scratch space), so
// that a line counted or a byte written past what was read shows.
type break14Reader struct {
	data     []byte
	pos, end int
	err      error // at end: io.EOF when end == len(data)
	rng      *rand.Rand
	maxChunk int
	zeroes   bool // some reads of 0 bytes, nil error
	withData bool // the final error comes with the last data
	scribble bool
	yield    bool // let another goroutine run in every read
	reads    int
	empties  int    // reads into an empty p
	file     string // where storeBody writes what it reads, when it does
}

func (r *break14Reader) Read(p []byte) (int, error) {
	r.reads++
	if len(p) == 0 {
		r.empties++
	}
	if r.reads > 4*len(r.data)+1000 || r.empties > 100 { // a drain that makes no progress fails, not hangs
		return 0, break14Runaway
	}
	if r.file != "" && r.reads%16 == 0 { // nor fills the disk
		if st, err := os.Stat(r.file); err == nil && st.Size() > int64(len(r.data)) {
			return 0, break14Runaway
		}
	}
	if r.yield {
		runtime.Gosched()
	}
	if r.scribble {
		for i := range p {
			p[i] = '\n'
		}
	}
	if r.pos == r.end {
		return 0, r.err
	}
	if len(p) == 0 || (r.zeroes && r.rng.IntN(4) == 0) {
		return 0, nil
	}
	k := min(1+r.rng.IntN(r.maxChunk), len(p), r.end-r.pos)
	copy(p, r.data[r.pos:r.pos+k])
	r.pos += k
	if r.pos == r.end && r.withData {
		return k, r.err
	}
	return k, nil
}

// break14Writer keeps what it is given. It fails its write number failAt (counting from 0; never
// when negative) with err, having taken only the first failN bytes of that write (failN < the
// write's length, as the io.Writer contract allows with an error).
type break14Writer struct {
	got      []byte
	writes   int
	tooLong  int // writes of more than the pooled buffer holds
	failAt   int
	failFrac float64
	err      error
	failed   bool
	check    func(p []byte) // called on every write, before it is kept
}

func (w *break14Writer) Write(p []byte) (int, error) {
	if len(w.got)+len(p) > 4<<20 { // more than any body here: a drain writing over and over fails, not eats the memory
		return 0, break14Runaway
	}
	if len(p) > break14Buf {
		w.tooLong++
	}
	if w.check != nil {
		w.check(p)
	}
	if w.writes == w.failAt {
		w.failed = true
		n := int(w.failFrac * float64(len(p)))
		w.got = append(w.got, p[:n]...)
		w.writes++
		return n, w.err
	}
	w.writes++
	w.got = append(w.got, p...)
	return len(p), nil
}

// break14Body is size bytes of random text, a '\n' about every lineLen bytes, and no byte of it
// 0 so that a stale or scribbled byte is told from a served one. mark, when not 0, is the only
// letter the lines are made of.
func break14Body(rng *rand.Rand, size, lineLen int, mark byte) []byte {
	b := make([]byte, size)
	for i := range b {
		switch {
		case rng.IntN(lineLen) == 0:
			b[i] = '\n'
		case mark != 0:
			b[i] = mark
		default:
			b[i] = "abc\t é\r2026-11-30T00:00:00Z"[rng.IntN(28)]
		}
	}
	return b
}

func break14Lines(b []byte) int64 { return int64(bytes.Count(b, []byte{'\n'})) }

var (
	break14ReadErr  = errors.New("connection reset by peer")
	break14WriteErr = errors.New("no space left on device")
	break14Runaway  = errors.New("drain read or wrote far more than the body")
)

// TestBreak14DrainRandom: bodies around the buffer's size (empty, a byte, 256 KiB and a byte
// either side, several buffers' worth), served in random reads, cut by an error at a random
// point or not, written to nothing, to a writer that keeps all, or to one that fails at a random
// write having taken part of it. Whatever was read reaches w in order exactly once, in pieces of
// at most 256 KiB; the lines counted are those read; the body's or the writer's error is returned.
func TestBreak14DrainRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 2026))
	sizes := []int{0, 1, 2, 4095, break14Buf - 1, break14Buf, break14Buf + 1, 2*break14Buf - 1, 2 * break14Buf, 3*break14Buf + 7}
	for range 6 {
		sizes = append(sizes, rng.IntN(4*break14Buf))
	}
	cases := 0
	for _, size := range sizes {
		for _, lineLen := range []int{1, 2, 80, 1 << 20} {
			body := break14Body(rng, size, lineLen, 0)
			for range 4 {
				cases++
				r := &break14Reader{data: body, end: len(body), err: io.EOF, rng: rng,
					zeroes: rng.IntN(2) == 0, withData: rng.IntN(2) == 0, scribble: rng.IntN(2) == 0}
				switch rng.IntN(4) {
				case 0:
					r.maxChunk = 1 + rng.IntN(64)
					if size > 64<<10 { // a byte a read through a MiB is slow for nothing
						r.maxChunk = 1 + rng.IntN(8<<10)
					}
				case 1:
					r.maxChunk = 1 + rng.IntN(8<<10)
				case 2:
					r.maxChunk = 1 + rng.IntN(break14Buf)
				default:
					r.maxChunk = 2 * break14Buf // as much as drain asks for
				}
				wantErr := error(nil)
				if rng.IntN(3) == 0 {
					r.end, r.err, wantErr = rng.IntN(size+1), break14ReadErr, break14ReadErr
				}
				read := body[:r.end]
				desc := fmt.Sprintf("size %d, line every %d, reads up to %d, zeroes %v, err with data %v, scribble %v, error at %d (%v)",
					size, lineLen, r.maxChunk, r.zeroes, r.withData, r.scribble, r.end, r.err)

				var w *break14Writer
				switch rng.IntN(3) {
				case 0: // raw floor: no writer
				case 1:
					w = &break14Writer{failAt: -1}
				default:
					w = &break14Writer{failAt: rng.IntN(1 + size/break14Buf + 1), failFrac: rng.Float64(), err: break14WriteErr}
				}
				var lines int64
				var err error
				if w == nil {
					err = drain(r, &lines, nil)
				} else {
					err = drain(r, &lines, w)
				}
				if w != nil && w.failed {
					desc += fmt.Sprintf(", write %d fails", w.failAt)
					if !errors.Is(err, break14WriteErr) {
						t.Errorf("%s: error %v, want %v", desc, err, break14WriteErr)
					}
					if !bytes.Equal(w.got, read[:min(len(w.got), len(read))]) || len(w.got) > len(read) {
						t.Errorf("%s: the writer has %d bytes, not a prefix of the %d read", desc, len(w.got), len(read))
					}
					if lines < break14Lines(w.got) || lines > break14Lines(read) {
						t.Errorf("%s: %d lines counted; %d written, %d in all the body served", desc, lines, break14Lines(w.got), break14Lines(read))
					}
					continue
				}
				if err != wantErr {
					t.Errorf("%s: error %v, want %v", desc, err, wantErr)
				}
				if r.pos != r.end {
					t.Errorf("%s: stopped reading at %d of %d", desc, r.pos, r.end)
				}
				if lines != break14Lines(read) {
					t.Errorf("%s: %d lines, want %d", desc, lines, break14Lines(read))
				}
				if w != nil {
					if !bytes.Equal(w.got, read) {
						t.Errorf("%s: the writer has %d bytes, not the %d read", desc, len(w.got), len(read))
					}
					if w.tooLong > 0 {
						t.Errorf("%s: %d writes of more than %d bytes", desc, w.tooLong, break14Buf)
					}
				}
			}
		}
	}
	t.Logf("%d bodies", cases)
}

// TestBreak14DrainNoStaleBytes: a short body read after a long one through the same pooled
// buffer gets none of the long one's bytes, whatever the read sizes.
func TestBreak14DrainNoStaleBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 3))
	long := bytes.Repeat([]byte("stale\n"), 3*break14Buf/6)
	for i := range 50 {
		var lines int64
		lr := &break14Reader{data: long, end: len(long), err: io.EOF, rng: rng, maxChunk: 2 * break14Buf}
		if err := drain(lr, &lines, io.Discard); err != nil {
			t.Fatal(err)
		}
		short := break14Body(rng, rng.IntN(2*break14Buf), 1+rng.IntN(100), 'f')
		r := &break14Reader{data: short, end: len(short), err: io.EOF, rng: rng, maxChunk: 1 + rng.IntN(break14Buf), zeroes: true, withData: i%2 == 0}
		w := &break14Writer{failAt: -1}
		lines = 0
		if err := drain(r, &lines, w); err != nil || !bytes.Equal(w.got, short) || lines != break14Lines(short) {
			t.Fatalf("body %d: %v, %d bytes, %d lines; want %d bytes, %d lines", i, err, len(w.got), lines, len(short), break14Lines(short))
		}
	}
}

// TestBreak14DrainConcurrent: ten goroutines drain bodies at once, as the floors do, each body
// of its own letter, read a little at a time with a yield in every read, some with no writer, some
// through a writer that itself drains another body while it writes (two bodies of one goroutine
// read at once). A buffer shared by two bodies read at once would put one's letter in the
// other's writes (and -race would see it).
func TestBreak14DrainConcurrent(t *testing.T) {
	const goroutines, perG = 10, 12
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(14, uint64(g)))
			mark := byte('A' + g)
			inner := byte('a' + g)
			for i := range perG {
				body := break14Body(rng, rng.IntN(3*break14Buf/2), 1+rng.IntN(100), mark)
				r := &break14Reader{data: body, end: len(body), err: io.EOF, rng: rng, maxChunk: 1 + rng.IntN(32<<10), zeroes: true, withData: i%2 == 0, yield: true, scribble: i%3 == 0}
				var lines int64
				if i%4 == 0 {
					if err := drain(r, &lines, nil); err != nil || lines != break14Lines(body) {
						t.Errorf("goroutine %d body %d, no writer: %v, %d lines, want %d", g, i, err, lines, break14Lines(body))
					}
					continue
				}
				w := &break14Writer{failAt: -1}
				w.check = func(p []byte) {
					for _, c := range p {
						if c != mark && c != '\n' {
							t.Errorf("goroutine %d body %d: byte %q in its write", g, i, c)
							return
						}
					}
					if i%2 == 1 { // another body drained while this one's buffer is held
						sub := break14Body(rng, rng.IntN(64<<10), 10, inner)
						sw := &break14Writer{failAt: -1}
						var sl int64
						sr := &break14Reader{data: sub, end: len(sub), err: io.EOF, rng: rng, maxChunk: 1 + rng.IntN(4<<10), yield: true}
						if err := drain(sr, &sl, sw); err != nil || !bytes.Equal(sw.got, sub) || sl != break14Lines(sub) {
							t.Errorf("goroutine %d body %d, inner body: %v, %d of %d bytes, %d lines", g, i, err, len(sw.got), len(sub), sl)
						}
					}
				}
				if err := drain(r, &lines, w); err != nil || !bytes.Equal(w.got, body) || lines != break14Lines(body) {
					t.Errorf("goroutine %d body %d: %v, %d of %d bytes, %d lines, want %d", g, i, err, len(w.got), len(body), lines, break14Lines(body))
				}
			}
		})
	}
	wg.Wait()
}

// TestBreak14DrainNoAllocShortReads: no allocation per body once warm, with the body read a few
// bytes at a time, 0-byte reads among them, the last data with io.EOF, and a writer; nor when the
// body fails midway.
func TestBreak14DrainNoAllocShortReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 4))
	body := break14Body(rng, 300<<10, 80, 0)
	w := &break14Writer{failAt: -1, got: make([]byte, 0, len(body))}
	r := &break14Reader{data: body, err: io.EOF, rng: rng, maxChunk: 16 << 10, zeroes: true, withData: true}
	for _, cut := range []bool{false, true} {
		var lines int64
		var err error
		allocs := testing.AllocsPerRun(20, func() {
			r.pos, r.end, r.err = 0, len(body), io.EOF
			if cut {
				r.end, r.err = len(body)-12345, break14ReadErr
			}
			w.got, lines = w.got[:0], 0
			err = drain(r, &lines, w)
		})
		want := body[:r.end]
		if allocs >= 1 || (err != nil) != cut || !bytes.Equal(w.got, want) || lines != break14Lines(want) {
			t.Errorf("cut %v: %.1f allocations a body, %v, %d bytes, %d lines; want none, %d bytes, %d lines", cut, allocs, err, len(w.got), lines, len(want), break14Lines(want))
		}
	}
}

// TestBreak14StoreBodyCut: the storage floor's file holds exactly the bytes served before a
// body's error, however they were read, and the error is returned.
func TestBreak14StoreBodyCut(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 5))
	dir := t.TempDir()
	for i := range 24 {
		body := break14Body(rng, rng.IntN(3*break14Buf), 1+rng.IntN(200), 0)
		r := &break14Reader{data: body, end: len(body), err: io.EOF, rng: rng, maxChunk: 1 + rng.IntN(break14Buf+100), zeroes: i%2 == 0, withData: i%3 == 0, scribble: i%4 == 0}
		wantErr := error(nil)
		if i%2 == 1 {
			r.end, r.err, wantErr = rng.IntN(len(body)+1), break14ReadErr, break14ReadErr
		}
		name := filepath.Join(dir, "ns", fmt.Sprintf("p%d", i%3), fmt.Sprintf("c%d.log", i))
		r.file = name
		var lines int64
		err := storeBody(name, r, &lines)
		got, rerr := os.ReadFile(name)
		want := body[:r.end]
		if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) || rerr != nil || !bytes.Equal(got, want) || lines != break14Lines(want) {
			t.Errorf("body %d (%d bytes, cut at %d): %v, file %d bytes (%v), %d lines; want %v, %d bytes, %d lines",
				i, len(body), r.end, err, len(got), rerr, lines, wantErr, len(want), break14Lines(want))
		}
	}
	if err := syncStore(dir); err != nil {
		t.Fatal(err)
	}
}

// shortWriter takes half of what it is given and says nothing, against io.Writer's contract.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// TestDrainShortWrite: a writer that takes less than it was given without an error is an
// error, as for io.Copy, not bytes lost without a word.
func TestDrainShortWrite(t *testing.T) {
	var lines int64
	if err := drain(bytes.NewReader([]byte("a\nb\n")), &lines, shortWriter{}); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("error %v, want %v", err, io.ErrShortWrite)
	}
}
