package logline

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		content string
		wantErr bool
	}{
		{in: "2024-01-01T00:00:00.000000000Z hello\n", want: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), content: "hello\n"},
		{in: "2024-01-01T00:00:01.5Z x", want: time.Date(2024, 1, 1, 0, 0, 1, 500000000, time.UTC), content: "x"},
		{in: "2024-01-01T00:00:01Z ", want: time.Date(2024, 1, 1, 0, 0, 1, 0, time.UTC), content: ""},
		{in: "2024-01-01T01:00:03.000000001+01:00 tz", want: time.Date(2024, 1, 1, 0, 0, 3, 1, time.UTC), content: "tz"},
		{in: "2023-12-31T23:59:59.999999999-00:30 neg", want: time.Date(2024, 1, 1, 0, 29, 59, 999999999, time.UTC), content: "neg"},
		{in: "2024-02-29T00:00:00Z leap", want: time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), content: "leap"},
		{in: "2023-02-29T00:00:00Z not leap", wantErr: true},
		{in: "2024-01-01T00:00:00.Z empty fraction", wantErr: true},
		{in: "2024-01-01T00:00:00.0000000001Z ten digits", wantErr: true},
		{in: "2024-01-01T24:00:00Z hour", wantErr: true},
		{in: "2024-01-01 00:00:00Z space", wantErr: true},
		{in: "no timestamp here", wantErr: true},
		{in: "2024-01-01T00:00:00Z", wantErr: true},
		{in: "2024-01-01T00:00:00+0100 offset without colon", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, at, err := ParseTimestamp([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !got.Equal(tt.want) || tt.in[at:] != tt.content {
				t.Fatalf("got %s %q, want %s %q", got, tt.in[at:], tt.want, tt.content)
			}
		})
	}
}

// The parser accepts only what time.Parse accepts, and reads the same instant. A Parser, which
// reuses what it read of the last line's second, agrees with ParseTimestamp on each line of the
// input (the fuzzer finds lines that share a second and lines that differ in one byte of it).
func FuzzParseTimestamp(f *testing.F) {
	f.Add([]byte("2024-01-01T00:00:00.000000000Z hello"))
	f.Add([]byte("2024-01-01T00:00:00.000000000Z hello\n2024-01-01T00:00:00.5+01:00 again\n2024-01-01T00:00:0x.5Z bad"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var p Parser
		for line := range bytes.Lines(in) {
			got, at, err := ParseTimestamp(line)
			pgot, pat, perr := p.Parse(line)
			if (err == nil) != (perr == nil) || !pgot.Equal(got) || pat != at {
				t.Fatalf("%q: Parser read %s, %d, %v after the lines before; ParseTimestamp %s, %d, %v", line, pgot, pat, perr, got, at, err)
			}
			if err != nil {
				continue
			}
			ts := string(line[:at-1])
			want, terr := time.Parse(time.RFC3339Nano, ts)
			if terr != nil {
				t.Fatalf("accepted %q which time.Parse refuses: %v", ts, terr)
			}
			if !got.Equal(want) {
				t.Fatalf("%q: got %s, time.Parse says %s", ts, got, want)
			}
		}
	})
}

func TestReaderFragments(t *testing.T) {
	long := strings.Repeat("x", 200)
	in := "a\n" + long + "\n\nlast"
	tests := []struct {
		name string
		r    io.Reader
	}{
		{"whole", strings.NewReader(in)},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader(in))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.r, 16) // raised to the minimum of 64
			var lines []string
			var cur bytes.Buffer
			for {
				f, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if f.First != (cur.Len() == 0) {
					t.Fatalf("First=%v with %q pending", f.First, cur.String())
				}
				cur.Write(f.Data)
				if f.Last {
					lines = append(lines, cur.String())
					cur.Reset()
				}
			}
			want := []string{"a\n", long + "\n", "\n"}
			if strings.Join(lines, "|") != strings.Join(want, "|") || cur.String() != "last" || !r.Partial() {
				t.Fatalf("lines %q, pending %q (partial %v)", lines, cur.String(), r.Partial())
			}
		})
	}
}

func BenchmarkParseTimestamp(b *testing.B) {
	line := []byte("2024-01-01T00:00:00.123456789Z some log line of ordinary length\n")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := ParseTimestamp(line); err != nil {
			b.Fatal(err)
		}
	}
}

// A released buffer goes to the next reader without what the last one had buffered and not read.
func TestReleaseReuse(t *testing.T) {
	first := NewReader(strings.NewReader("2026-01-01T00:00:00Z a\n2026-01-01T00:00:01Z b\n"), 0)
	if f, err := first.Next(); err != nil || string(f.Data) != "2026-01-01T00:00:00Z a\n" {
		t.Fatalf("first reader: %q, %v", f.Data, err)
	}
	first.Release()
	first.Release() // a second release is a no-op, not a second buffer in the pool
	for range 3 {
		r := NewReader(strings.NewReader("2026-01-01T00:00:02Z c\n"), 0)
		f, err := r.Next()
		if err != nil || string(f.Data) != "2026-01-01T00:00:02Z c\n" {
			t.Fatalf("reader after a release: %q, %v", f.Data, err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("reader after a release: %v after its only line, want EOF", err)
		}
		r.Release()
	}
}

// The fragments handed out while Ready says so stay in place, one after the other, until a Next
// that is not Ready: the merge hashes them then, many lines at once. Whatever the reads return,
// the fragments are the stream, in lines, and an error comes after what was read before it.
func TestReaderReady(t *testing.T) {
	var in strings.Builder
	for i := range 300 {
		in.WriteString(strings.Repeat(string(rune('a'+i%26)), i*7%150))
		in.WriteByte('\n')
	}
	in.WriteString("unterminated")
	broken := errors.New("connection reset")
	tests := []struct {
		name    string
		r       io.Reader
		size    int
		wantErr error
	}{
		{"whole", strings.NewReader(in.String()), 0, io.EOF},
		{"small buffer", strings.NewReader(in.String()), 100, io.EOF},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader(in.String())), 100, io.EOF},
		{"half reads", iotest.HalfReader(strings.NewReader(in.String())), 64, io.EOF},
		{"error with the last data", iotest.DataErrReader(strings.NewReader(in.String())), 100, io.EOF},
		{"failing stream", io.MultiReader(iotest.HalfReader(strings.NewReader(in.String())), iotest.ErrReader(broken)), 100, broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.r, tt.size)
			defer r.Release()
			var got bytes.Buffer
			// held are the fragments handed out since the last Next that was not Ready, and
			// copies what they held then.
			var held, copies [][]byte
			for {
				if !r.Ready() {
					held, copies = held[:0], copies[:0]
				}
				f, err := r.Next()
				for i, h := range held {
					if !bytes.Equal(h, copies[i]) {
						t.Fatalf("fragment %q changed to %q by a Next that was Ready", copies[i], h)
					}
				}
				if err != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("err %v, want %v", err, tt.wantErr)
					}
					break
				}
				if n := len(held); n > 0 {
					prev := held[n-1]
					if cap(prev) == len(prev) || &prev[:len(prev)+1][len(prev)] != &f.Data[0] {
						t.Fatalf("fragments %q and %q, handed out while Ready, are not contiguous", prev, f.Data)
					}
				}
				if f.Last != bytes.HasSuffix(f.Data, []byte("\n")) || f.First != (got.Len() == 0 || got.Bytes()[got.Len()-1] == '\n') {
					t.Fatalf("fragment %q: First=%v Last=%v after %d bytes", f.Data, f.First, f.Last, got.Len())
				}
				got.Write(f.Data)
				held, copies = append(held, f.Data), append(copies, bytes.Clone(f.Data))
			}
			if got.String() != in.String() || !r.Partial() {
				t.Fatalf("read %d bytes (partial %v), want the %d served", got.Len(), r.Partial(), in.Len())
			}
		})
	}
}

// BenchmarkParser parses lines of one second, as a stream of many lines a second has them.
func BenchmarkParser(b *testing.B) {
	lines := [][]byte{
		[]byte("2024-01-01T00:00:00.123456789Z some log line of ordinary length\n"),
		[]byte("2024-01-01T00:00:00.223456789Z another log line of ordinary length\n"),
	}
	var p Parser
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := p.Parse(lines[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// chunkReader serves its data in reads of random length, at most max bytes each (a stream whose
// bytes come as they were sent, some at once, some a few at a time).
type chunkReader struct {
	data []byte
	rnd  *rand.Rand
	max  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.rnd.IntN(c.max))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// The reader's buffer grows and shrinks under it (a small one while lines come one by one,
// the full one for a long line or a backlog), and none of that may show in what it hands out:
// random lines (some longer than the full buffer), read in random pieces, with Idle called
// whenever the reader has nothing buffered, come out as bufio.Reader.ReadSlice with a buffer of
// the full size splits them.
func TestReaderGrowsAndShrinks(t *testing.T) {
	for _, size := range []int{0, 100, SmallBufferSize + 1, 3 * SmallBufferSize} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			full := size
			if full <= 0 {
				full = DefaultBufferSize
			}
			for seed := range uint64(30) {
				rnd := rand.New(rand.NewPCG(seed, uint64(size)))
				var in bytes.Buffer
				for range rnd.IntN(100) {
					n := rnd.IntN(300)
					switch rnd.IntN(10) {
					case 0:
						n = rnd.IntN(3 * full)
					case 1:
						n = full - 1 + rnd.IntN(3) // around the buffer's size, newline included
					}
					in.WriteString(strings.Repeat(string(rune('a'+rnd.IntN(26))), n))
					in.WriteByte('\n')
				}
				if rnd.IntN(2) == 0 {
					in.WriteString("unterminated")
				}
				// What bufio makes of it with a buffer of the full size.
				var want [][]byte
				br := bufio.NewReaderSize(bytes.NewReader(in.Bytes()), full)
				for {
					b, err := br.ReadSlice('\n')
					if len(b) > 0 {
						want = append(want, append([]byte(nil), b...))
					}
					if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
						break
					}
				}
				src := &chunkReader{data: in.Bytes(), rnd: rnd, max: 1 + rnd.IntN(2*full)}
				newReader := NewReader
				if seed%2 == 1 {
					newReader = NewLineReader
				}
				r := newReader(src, size)
				var got [][]byte
				// held are the fragments handed out since the last Next that was not Ready: a
				// buffer that grows moves them, which Ready must have said.
				var held [][]byte
				for {
					if r.Buffered() == 0 && rnd.IntN(2) == 0 {
						r.Idle()
						held = held[:0]
						if len(r.buf) != r.start {
							t.Fatalf("seed %d: %d bytes held after Idle with nothing buffered, want %d", seed, len(r.buf), r.start)
						}
					}
					if !r.Ready() {
						held = held[:0]
					}
					f, err := r.Next()
					for i, h := range held {
						if !bytes.Equal(h, got[len(got)-len(held)+i]) {
							t.Fatalf("seed %d: a fragment changed under a Next that was Ready", seed)
						}
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if n := len(held); n > 0 {
						// Moved bytes may still read the same (a buffer given back keeps them):
						// fragments of one Ready run lie one after the other.
						prev := held[n-1]
						if cap(prev) == len(prev) || &prev[:len(prev)+1][len(prev)] != &f.Data[0] {
							t.Fatalf("seed %d: fragments handed out while Ready are not contiguous", seed)
						}
					}
					got = append(got, append([]byte(nil), f.Data...))
					held = append(held, f.Data)
				}
				r.Release()
				if len(got) != len(want) {
					t.Fatalf("seed %d: %d fragments, bufio says %d", seed, len(got), len(want))
				}
				for i := range got {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("seed %d: fragment %d is %d bytes %.20q..., bufio says %d bytes %.20q...", seed, i, len(got[i]), got[i], len(want[i]), want[i])
					}
				}
			}
		})
	}
}

// A reader holds its small buffer while lines come one by one, takes a larger one, a step at a
// time, for what does not fit (a long line, a backlog that fills the buffer), and gives it back
// once idle, but not while it holds what was read and not handed out.
func TestReaderBufferSize(t *testing.T) {
	line := func(n int) string { return "2026-01-01T00:00:00Z " + strings.Repeat("x", n-22) + "\n" }
	// A buffer grows a step at a time: logs of a few KiB never take the full size.
	const mid = SmallBufferSize * growth
	tests := []struct {
		name string
		in   string
		// reads of at most this many bytes (0: as much as asked)
		chunk int
		// size held after the first Next, and after Idle then
		held, idle int
		lineByLine bool // NewLineReader
	}{
		{"short lines", line(100) + line(100), 0, SmallBufferSize, SmallBufferSize, false},
		{"one short line a read", line(100) + line(100), 100, SmallBufferSize, SmallBufferSize, false},
		{"a long line", line(10_000), 0, mid, SmallBufferSize, false},
		{"a long line, a little at a time", line(10_000), 1000, mid, SmallBufferSize, false},
		{"a longer line", line(40_000), 0, DefaultBufferSize, SmallBufferSize, false},
		{"a longer line, a little at a time", line(40_000), 1000, DefaultBufferSize, SmallBufferSize, false},
		{"a backlog of short lines", strings.Repeat(line(100), 100), 0, mid, mid, false},
		{"a longer backlog of short lines", strings.Repeat(line(100), 400), 0, mid, mid, false},
		// A line reader starts smaller, and grows from there.
		{"a backlog of short lines, line by line", strings.Repeat(line(100), 400), 0, LineBufferSize, LineBufferSize, true},
		{"a line, line by line", line(5_000), 0, LineBufferSize * growth, LineBufferSize, true},
		{"a long line, line by line", line(10_000), 0, LineBufferSize * growth * growth, LineBufferSize, true},
		{"a longer line, line by line", line(70_000), 0, DefaultBufferSize, LineBufferSize, true},
	}
	// the largest buffer held while reading the rest, where it is not the size held first
	most := map[string]int{"a longer backlog of short lines": DefaultBufferSize}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src io.Reader = strings.NewReader(tt.in)
			if tt.chunk > 0 {
				src = &chunkReader{data: []byte(tt.in), rnd: rand.New(rand.NewPCG(1, 2)), max: tt.chunk}
				src = iotest.HalfReader(src) // never all of a chunk: no read fills the buffer by chance
			}
			newReader := NewReader
			if tt.lineByLine {
				newReader = NewLineReader
			}
			r := newReader(src, 0)
			defer r.Release()
			start := SmallBufferSize
			if tt.lineByLine {
				start = LineBufferSize
			}
			if len(r.buf) != start {
				t.Fatalf("a new reader holds %d bytes, want %d", len(r.buf), start)
			}
			f, err := r.Next()
			if err != nil || !f.Last || len(f.Data) > len(tt.in) || !strings.HasPrefix(tt.in, string(f.Data)) {
				t.Fatalf("first fragment %d bytes (last %v), %v; want the first line whole", len(f.Data), f.Last, err)
			}
			if len(r.buf) != tt.held {
				t.Fatalf("holds %d bytes after the first line, want %d", len(r.buf), tt.held)
			}
			buffered := r.Buffered()
			r.Idle()
			if len(r.buf) != tt.idle || r.Buffered() != buffered {
				t.Fatalf("after Idle: holds %d bytes with %d buffered, want %d bytes with %d buffered", len(r.buf), r.Buffered(), tt.idle, buffered)
			}
			n, held := len(f.Data), tt.held
			for {
				f, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n += len(f.Data)
				held = max(held, len(r.buf))
			}
			if n != len(tt.in) {
				t.Fatalf("%d bytes read, want %d", n, len(tt.in))
			}
			if want := cmp.Or(most[tt.name], max(tt.held, tt.idle)); held != want {
				t.Fatalf("held at most %d bytes, want %d", held, want)
			}
		})
	}
}

// digits8 reads eight bytes at once as digits does one by one: random words of digits with
// bytes swapped for the neighbours of '0' and '9' (and bytes whose high bit or low nibble alone
// makes them a digit), each agreeing with digits; and a fraction read through the fast path agrees
// with time.Parse.
func TestDigits8(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	odd := []byte{'/', ':', '0' - 6, '9' + 6, '0' + 0x80, '9' + 0x80, '0' - 0x10, '9' + 0x10, 0, 0xff, ' ', '.'}
	for i := 0; i < 200000; i++ {
		b := make([]byte, 8)
		for j := range b {
			b[j] = '0' + byte(rng.IntN(10))
		}
		for range rng.IntN(3) {
			b[rng.IntN(8)] = odd[rng.IntN(len(odd))]
		}
		want, wok := digits(b)
		got, ok := digits8(b)
		if ok != wok || got != want {
			t.Fatalf("digits8(%q) = %d, %v; digits says %d, %v", b, got, ok, want, wok)
		}
		line := []byte("2024-01-01T00:00:00." + string(b) + string('0'+byte(rng.IntN(10))) + "Z x")
		if rng.IntN(4) == 0 {
			line[28] = odd[rng.IntN(len(odd))]
		}
		got2, _, err := ParseTimestamp(line)
		want2, terr := time.Parse(time.RFC3339Nano, string(line[:30]))
		if (err == nil) != (terr == nil) || err == nil && !got2.Equal(want2) {
			t.Fatalf("%q: read %s, %v; time.Parse %s, %v", line, got2, err, want2, terr)
		}
	}
}

// Wait returns only once the stream has more than the start of a line the reader holds: a
// follower that waits after a whole line while the next one is begun must wait for the
// container, not spin or return at once and leave the whole line unsaved.
func TestWaitPastLineStart(t *testing.T) {
	tests := []struct {
		name  string
		first string // written before the wait; the first line is read
		size  int
		more  string // written while Wait waits
		want  string // the next Next's fragment after the wait
	}{
		{"nothing held", "a\n", 0, "b\n", "b\n"},
		{"a line begun", "a\nbb", 0, "b\n", "bbb\n"},
		{"a line begun that fills the buffer", "a\n" + strings.Repeat("x", 14), 16, "y\n", strings.Repeat("x", 14) + "y\n"},
	}
	for _, tt := range tests {
		for _, lineByLine := range []bool{false, true} {
			t.Run(fmt.Sprint(tt.name, " line by line ", lineByLine), func(t *testing.T) {
				pr, pw := io.Pipe()
				newReader := NewReader
				if lineByLine {
					newReader = NewLineReader
				}
				r := newReader(pr, tt.size)
				defer r.Release()
				go pw.Write([]byte(tt.first))
				if f, err := r.Next(); err != nil || string(f.Data) != "a\n" {
					t.Fatalf("first Next: %q, %v", f.Data, err)
				}
				for r.Buffered() < len(tt.first)-2 {
					// The rest of the first write may come in reads of its own.
					if r.Ready() {
						t.Fatalf("Ready holding %d bytes of a line begun", r.Buffered())
					}
					r.Wait()
				}
				waited := make(chan struct{})
				go func() {
					r.Wait()
					close(waited)
				}()
				select {
				case <-waited:
					t.Fatalf("Wait returned holding %d bytes of a line begun, before the stream had more", r.Buffered())
				case <-time.After(50 * time.Millisecond):
				}
				go pw.Write([]byte(tt.more))
				<-waited
				var got []byte
				for {
					f, err := r.Next()
					if err != nil {
						t.Fatal(err)
					}
					if got = append(got, f.Data...); f.Last {
						break
					}
				}
				if string(got) != tt.want {
					t.Errorf("after the wait: %q, want %q", got, tt.want)
				}
			})
		}
	}
}
