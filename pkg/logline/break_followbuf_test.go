package logline

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// Many line readers at once (sharing the pools, as a follower's streams do), lines around every
// step of a line reader's growth (1 KiB, 8, 64, 256) with the timestamp prefix around each
// boundary, read in random pieces, Idle and Wait called whenever a reader caught up, Release at
// a random point: each reader's fragments reassemble into exactly its lines, and a fragment
// handed out while Ready stays unchanged (no other reader was given its buffer) until Next is
// called with Ready false.
func TestBreakFollowBufConcurrent(t *testing.T) {
	const ts = len("2024-01-01T10:00:00.123456789Z ")
	var lens []int
	for _, b := range []int{LineBufferSize, LineBufferSize * growth, LineBufferSize * growth * growth, DefaultBufferSize} {
		for _, d := range []int{-ts - 2, -ts - 1, -ts, -ts + 1, -1, 0, 1, 7} {
			lens = append(lens, max(0, b+d))
		}
	}
	lens = append(lens, 0, 1, 10, 100, 2*DefaultBufferSize+3)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 6 {
				rng := rand.New(rand.NewPCG(uint64(g), uint64(round)))
				var src bytes.Buffer
				n := 1 + rng.IntN(25)
				for i := range n {
					line := fmt.Appendf(nil, "2024-01-01T10:00:%02d.123456789Z ", i%60)
					l := lens[rng.IntN(len(lens))]
					if rng.IntN(2) == 0 {
						l = rng.IntN(60)
					}
					for k := range l {
						line = append(line, byte('a'+(g+i+k)%26))
					}
					src.Write(append(line, '\n'))
				}
				want := bytes.Clone(src.Bytes())
				size := []int{0, DefaultBufferSize, 5000, LineBufferSize, 2 * LineBufferSize, 100}[rng.IntN(6)]
				r := NewLineReader(&oddReader{src: src.Bytes(), rng: rng}, size)
				var got []byte
				var held [][]byte
				stopAt := -1
				if rng.IntN(4) == 0 {
					stopAt = rng.IntN(n)
				}
				lines := 0
				for {
					if !r.Ready() {
						for k := 0; k < len(held); k += 2 {
							if !bytes.Equal(held[k], held[k+1]) {
								errs <- fmt.Errorf("g%d round %d: a held fragment changed before Next with Ready false", g, round)
								return
							}
						}
						held = held[:0]
					}
					f, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						errs <- err
						return
					}
					got = append(got, f.Data...)
					held = append(held, f.Data, bytes.Clone(f.Data))
					if f.Last {
						lines++
						if lines == stopAt {
							break
						}
						if r.Buffered() == 0 && rng.IntN(2) == 0 {
							for k := 0; k < len(held); k += 2 {
								if !bytes.Equal(held[k], held[k+1]) {
									errs <- fmt.Errorf("g%d round %d: a held fragment changed before Idle", g, round)
									return
								}
							}
							held = held[:0]
							r.Idle()
							if rng.IntN(2) == 0 {
								r.Wait()
							}
						}
					}
				}
				for k := 0; k < len(held); k += 2 {
					if !bytes.Equal(held[k], held[k+1]) {
						errs <- fmt.Errorf("g%d round %d: a held fragment changed before Release", g, round)
						return
					}
				}
				r.Release()
				if stopAt < 0 && !bytes.Equal(got, want) {
					errs <- fmt.Errorf("g%d round %d size %d: got %d bytes, want %d", g, round, size, len(got), len(want))
					return
				}
				if stopAt >= 0 && !bytes.HasPrefix(want, got) {
					errs <- fmt.Errorf("g%d round %d: not a prefix", g, round)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
