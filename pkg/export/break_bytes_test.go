package export

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// A result counts exactly what its export added to the file when a running container is inside
// a line at the end of a stream (written in part, then dropped, and served whole by the next
// run), with lines around the write buffer's sizes (4 KiB, 32 KiB) read with buffers of sizes
// in and out of the reader's pools, and checkpoints saved every few bytes. The file holds every
// complete line served, once, in order.
func TestBreakResultBytesWithPartialLines(t *testing.T) {
	sizes := []int{0, 1, 4<<10 - 40, 4 << 10, 32<<10 - 40, 32<<10 + 3, 70 << 10}
	bufSizes := []int{0, 64, 100, 4 << 10, 5000, 32 << 10, 40000}
	seeds := uint64(16)
	if testing.Short() {
		seeds = 6
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 37))
		timestamps := seed%2 == 1
		k, p, run := newFixture(t)
		sec, prev := 0, int64(0)
		text := func() string { return strings.Repeat("y", sizes[rng.IntN(len(sizes))]) }
		for round := range 2 + rng.IntN(4) {
			if k.unterminated != nil {
				// The line the last run saw begun is complete now.
				e := *k.unterminated
				k.unterminated = nil
				k.mu.Lock()
				k.current = append(k.current, e)
				k.mu.Unlock()
			}
			for range rng.IntN(12) {
				sec += rng.IntN(2)
				k.add(sec, rng.IntN(1000), text())
			}
			if rng.IntN(2) == 0 {
				k.unterminated = &entry{ts: ts(sec, 999), text: "cut" + text()}
			}
			res := run(Options{Timestamps: timestamps, BufferSize: bufSizes[rng.IntN(len(bufSizes))], CommitBytes: int64(1 + rng.IntN(64<<10))})
			if res.Err != nil {
				t.Fatalf("seed %d round %d: %v", seed, round, res.Err)
			}
			b, err := os.ReadFile(p.file)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			size := int64(len(b))
			if res.Bytes != size-prev || res.Lines != int64(bytes.Count(b[prev:], []byte("\n"))) || len(b) > 0 && b[len(b)-1] != '\n' {
				t.Fatalf("seed %d round %d: result %d lines, %d bytes; the file grew by %d bytes, %d lines", seed, round, res.Lines, res.Bytes, size-prev, bytes.Count(b[prev:], []byte("\n")))
			}
			var want strings.Builder // every complete line served, once, in order
			for _, e := range k.current {
				if timestamps {
					want.WriteString(e.ts.Format("2006-01-02T15:04:05.000000000Z07:00") + " ")
				}
				want.WriteString(e.text + "\n")
			}
			if string(b) != want.String() {
				t.Fatalf("seed %d round %d: the file has %d bytes, want %d", seed, round, len(b), want.Len())
			}
			prev = size
		}
	}
}
