package logline

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// chunks serves its chunks one per Read, then blocks (like a followed stream) until closed.
type chunks struct {
	c    chan []byte
	rest []byte
}

func newChunks() *chunks { return &chunks{c: make(chan []byte, 64)} }

func (s *chunks) Read(p []byte) (int, error) {
	if len(s.rest) == 0 {
		b, ok := <-s.c
		if !ok {
			return 0, io.EOF
		}
		s.rest = b
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// waitDone runs Wait and reports whether it returned within d.
func waitDone(r *Reader, d time.Duration) (chan struct{}, bool) {
	done := make(chan struct{})
	go func() { r.Wait(); close(done) }()
	select {
	case <-done:
		return done, true
	case <-time.After(d):
		return done, false
	}
}

// A partial line that fills a line reader's buffer: Wait grows it through the pooled steps (1K,
// 8K, 64K, then the size) and never past the size; at the size, Wait returns at once (Ready).
func TestBreakWaitGrowsLineReaderToSizeOnly(t *testing.T) {
	for _, size := range []int{0, 3000, LineBufferSize, 70 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			src := newChunks()
			r := NewLineReader(src, size)
			defer r.Release()
			max := size
			if max <= 0 {
				max = DefaultBufferSize
			}
			src.c <- []byte("a\n")
			if f, err := r.Next(); err != nil || string(f.Data) != "a\n" {
				t.Fatalf("first: %q %v", f.Data, err)
			}
			held := 0
			for step := 0; step < 20; step++ {
				if r.Ready() {
					if held != max || len(r.buf) != max {
						t.Fatalf("Ready holding %d of a line, buffer %d, size %d", held, len(r.buf), max)
					}
					if _, ok := waitDone(r, time.Second); !ok {
						t.Fatalf("Wait blocked while Ready")
					}
					return
				}
				// Fill exactly what is left of the buffer with the line's bytes.
				next := len(r.buf)
				if held == next {
					next = min(next*growth, max)
				}
				room := next - held
				src.c <- []byte(strings.Repeat("x", room))
				if done, ok := waitDone(r, time.Second); !ok {
					src.c <- []byte{}
					<-done
					t.Fatalf("Wait blocked with %d bytes queued (held %d, buffer %d)", room, held, len(r.buf))
				}
				held = r.Buffered()
				if len(r.buf) > max {
					t.Fatalf("buffer %d past size %d", len(r.buf), max)
				}
			}
			t.Fatalf("never Ready: held %d buffer %d", held, len(r.buf))
		})
	}
}

// A source that returns nothing and no error: Wait gives up (ErrNoProgress), no spin, no panic;
// Next hands out the begun line, then the error.
func TestBreakWaitNoProgress(t *testing.T) {
	n := 0
	src := readerFunc(func(p []byte) (int, error) {
		n++
		if n == 1 {
			return copy(p, "a\nbb"), nil
		}
		return 0, nil
	})
	r := NewLineReader(src, 0)
	defer r.Release()
	if f, err := r.Next(); err != nil || string(f.Data) != "a\n" {
		t.Fatalf("first: %q %v", f.Data, err)
	}
	if _, ok := waitDone(r, time.Second); !ok {
		t.Fatal("Wait spins")
	}
	f, err := r.Next()
	if err != nil || string(f.Data) != "bb" || f.Last {
		t.Fatalf("Next after no progress: %q %+v %v", f.Data, f, err)
	}
	if _, err := r.Next(); err != io.ErrNoProgress {
		t.Fatalf("then %v", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// The buffer a reader grew in Wait goes back to the pool on Idle and Release; another reader
// that takes it does not see the first's bytes change under it.
func TestBreakWaitPoolHandoff(t *testing.T) {
	for i := 0; i < 200; i++ {
		src := newChunks()
		r := NewLineReader(src, 0)
		src.c <- []byte("a\n" + strings.Repeat("y", LineBufferSize-2))
		if f, err := r.Next(); err != nil || string(f.Data) != "a\n" {
			t.Fatalf("first: %q %v", f.Data, err)
		}
		src.c <- []byte(strings.Repeat("y", 2))
		r.Wait()
		src.c <- []byte("zz\n")
		r.Wait() // now full: grows to 8K
		got := []byte{}
		for {
			f, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, f.Data...)
			if f.Last {
				break
			}
		}
		if want := strings.Repeat("y", LineBufferSize) + "zz\n"; string(got) != want {
			t.Fatalf("line %d bytes, want %d", len(got), len(want))
		}
		r.Idle()
		if len(r.buf) != LineBufferSize {
			t.Fatalf("after Idle: %d", len(r.buf))
		}
		r.Release()
	}
}
