package export

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A result counts exactly what its export added to the file: random logs (lines of any length,
// some split by the runtime into entries, many in one second, read with small buffers so that
// lines come in fragments), exported in rounds with and without timestamps, the last round of a
// container that finished inside its last line (stored with a newline added). The merge counts a
// line's bytes as it writes them rather than asking the log for its length.
func TestResultCountsWhatIsWritten(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		timestamps := seed%2 == 1
		k, p, run := newFixture(t)
		sec, prev := 0, int64(0)
		text := func() string {
			return strings.Repeat("x", rng.IntN(3)*rng.IntN(300))
		}
		rounds := 2 + rng.IntN(4)
		for round := range rounds {
			for range rng.IntN(30) {
				sec += rng.IntN(2)
				if rng.IntN(5) == 0 {
					pieces := make([]entry, 1+rng.IntN(3))
					for i := range pieces {
						pieces[i] = entry{ts: ts(sec, i), text: text()}
					}
					k.addPartial(pieces...)
				} else {
					k.add(sec, rng.IntN(1000), text())
				}
			}
			last := round == rounds-1
			if last && rng.IntN(2) == 0 {
				// The container finished inside its last line.
				k.unterminated = &entry{ts: ts(sec, 999), text: "end" + text()}
				started := p.status.State.Running.StartedAt
				p.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ContainerID: p.status.ContainerID, StartedAt: started, FinishedAt: metav1.NewTime(ts(sec+1, 0))}}
			}
			res := run(Options{Timestamps: timestamps, BufferSize: 64 + rng.IntN(300)})
			if res.Err != nil {
				t.Fatalf("seed %d round %d: %v", seed, round, res.Err)
			}
			b, err := os.ReadFile(p.file)
			if err != nil {
				t.Fatal(err)
			}
			size := int64(len(b))
			if res.Bytes != size-prev || res.Lines != int64(bytes.Count(b[prev:], []byte("\n"))) || len(b) > 0 && b[len(b)-1] != '\n' {
				t.Fatalf("seed %d round %d: result %d lines, %d bytes; the file grew by %q", seed, round, res.Lines, res.Bytes, b[prev:])
			}
			prev = size
		}
	}
}
