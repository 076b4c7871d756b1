package logline

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// oddReader serves src in reads of random sizes, some empty, the last one maybe with io.EOF.
type oddReader struct {
	src []byte
	rng *rand.Rand
}

func (c *oddReader) Read(p []byte) (int, error) {
	if len(c.src) == 0 {
		return 0, io.EOF
	}
	if c.rng.IntN(8) == 0 {
		return 0, nil
	}
	n := min(len(p), len(c.src), 1+c.rng.IntN(1+c.rng.IntN(70<<10)))
	copy(p, c.src[:n])
	c.src = c.src[n:]
	if len(c.src) == 0 && c.rng.IntN(2) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// Buffer sizes that are pool sizes and sizes that are not, lines around each step of the
// buffer's growth, read in random pieces, with Idle and Wait called whenever the reader caught up:
// the fragments are exactly the lines cut in pieces of the buffer's size (what a reader with
// a buffer of that size from the start hands out), the last piece of each line Last, those of an
// unterminated last line not; and the fragments handed out while Ready was true stay where they
// are until Next is called with Ready false.
func TestBreakFragmentsAreChunks(t *testing.T) {
	bufSizes := []int{1, 63, 64, 65, 100, SmallBufferSize - 1, SmallBufferSize, SmallBufferSize + 1, 5000,
		SmallBufferSize * growth, SmallBufferSize*growth + 1, 40000, DefaultBufferSize - 1, DefaultBufferSize, 300 << 10}
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 37))
			size := bufSizes[rng.IntN(len(bufSizes))]
			eff := max(size, minBufferSize)
			lens := []int{0, 1, 30, eff - 32, eff - 31, eff - 30, 2*eff - 31, SmallBufferSize - 31, SmallBufferSize - 30,
				SmallBufferSize*growth - 31, SmallBufferSize*growth - 30, SmallBufferSize*growth + 7, DefaultBufferSize - 31}
			var src bytes.Buffer
			var want []Fragment
			nLines := 1 + rng.IntN(30)
			for i := range nLines {
				line := fmt.Appendf(nil, "2024-01-01T10:00:%02d.123456789Z ", i%60)
				line = append(line, bytes.Repeat([]byte{byte('a' + i%26)}, max(0, lens[rng.IntN(len(lens))]))...)
				last := i < nLines-1 || rng.IntN(2) == 0
				if last {
					line = append(line, '\n')
				}
				src.Write(line)
				for j := 0; j < len(line); j += eff {
					piece := line[j:min(len(line), j+eff)]
					want = append(want, Fragment{Data: piece, First: j == 0, Last: last && j+eff >= len(line)})
				}
			}
			newReader := NewReader
			if rng.IntN(2) == 0 {
				newReader = NewLineReader
			}
			r := newReader(&oddReader{src: src.Bytes(), rng: rng}, size)
			defer r.Release()
			var got []Fragment
			var held [][]byte // fragments handed out since Ready was last false, and their copies
			for {
				if !r.Ready() {
					for k := 0; k < len(held); k += 2 {
						if !bytes.Equal(held[k], held[k+1]) || len(held[k]) > 0 && !sameArray(held[k], r.buf) {
							t.Fatalf("size %d: a fragment handed out while Ready moved before Next was called with Ready false", size)
						}
					}
					held = held[:0]
				}
				f, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, Fragment{Data: bytes.Clone(f.Data), First: f.First, Last: f.Last})
				held = append(held, f.Data, got[len(got)-1].Data)
				if f.Last && r.Buffered() == 0 && rng.IntN(2) == 0 {
					held = held[:0]
					r.Idle()
					if rng.IntN(2) == 0 {
						r.Wait()
					}
				}
			}
			if len(got) != len(want) {
				t.Fatalf("size %d: %d fragments, want %d", size, len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i].Data, want[i].Data) || got[i].First != want[i].First || got[i].Last != want[i].Last {
					t.Fatalf("size %d: fragment %d: %d bytes first %v last %v, want %d bytes first %v last %v",
						size, i, len(got[i].Data), got[i].First, got[i].Last, len(want[i].Data), want[i].First, want[i].Last)
				}
			}
		})
	}
}

// sameArray tells whether p is a slice of buf's array: both reach to its end.
func sameArray(p, buf []byte) bool {
	return cap(buf) > 0 && cap(p) > 0 && &p[:cap(p)][cap(p)-1] == &buf[:cap(buf)][cap(buf)-1]
}
