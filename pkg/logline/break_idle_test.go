package logline

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// pieceReader serves src in reads of random sizes.
type pieceReader struct {
	src []byte
	rng *rand.Rand
}

func (c *pieceReader) Read(p []byte) (int, error) {
	if len(c.src) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.src), 1+c.rng.IntN(80<<10))
	copy(p, c.src[:n])
	c.src = c.src[n:]
	return n, nil
}

// Lines around the small and full buffer sizes, read in random pieces, with Idle and Wait called
// whenever the reader has handed out all it read (as a followed stream does): the fragments put
// back together are the stream, each line's first fragment holds its whole timestamp prefix, and
// the fragments handed out while Ready was true stay where they were until Next is called with
// Ready false.
func TestBreakIdleGrowth(t *testing.T) {
	sizes := []int{0, 5, SmallBufferSize - 40, SmallBufferSize, SmallBufferSize + 1, 10 << 10,
		DefaultBufferSize - 1, DefaultBufferSize, DefaultBufferSize + 3, DefaultBufferSize + 200<<10}
	prefix := "2024-01-01T10:00:00.123456789Z "
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			var src bytes.Buffer
			for i := range 40 {
				src.WriteString(prefix)
				src.Write(bytes.Repeat([]byte{byte('a' + i%26)}, sizes[rng.IntN(len(sizes))]))
				if i < 39 || rng.IntN(2) == 0 {
					src.WriteByte('\n')
				}
			}
			newReader := NewReader
			if seed%2 == 1 {
				newReader = NewLineReader
			}
			r := newReader(&pieceReader{src: src.Bytes(), rng: rng}, 0)
			defer r.Release()
			var got bytes.Buffer
			type kept struct{ data, copy []byte }
			var held []kept
			for {
				if !r.Ready() {
					for _, k := range held {
						if !bytes.Equal(k.data, k.copy) {
							t.Fatal("a fragment handed out while Ready moved before Next was called with Ready false")
						}
					}
					held = nil
				}
				f, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if f.First && !bytes.HasPrefix(f.Data, []byte(prefix)) {
					t.Fatalf("a first fragment of %d bytes without its timestamp", len(f.Data))
				}
				if len(f.Data) > DefaultBufferSize {
					t.Fatalf("a fragment of %d bytes", len(f.Data))
				}
				got.Write(f.Data)
				held = append(held, kept{f.Data, bytes.Clone(f.Data)})
				if f.Last && r.Buffered() == 0 {
					for _, k := range held {
						if !bytes.Equal(k.data, k.copy) {
							t.Fatal("a fragment moved before Idle")
						}
					}
					held = nil
					r.Idle()
					if want := map[bool]int{false: SmallBufferSize, true: LineBufferSize}[r.lineByLine]; len(r.buf) != want {
						t.Fatalf("an idle reader holds %d bytes, want %d", len(r.buf), want)
					}
					if rng.IntN(2) == 0 {
						r.Wait()
					}
				}
			}
			if !bytes.Equal(got.Bytes(), src.Bytes()) {
				t.Fatalf("read %d bytes, want %d", got.Len(), src.Len())
			}
		})
	}
}
