package logline

import (
	"strings"
	"testing"
)

type repeatLine struct{ line string }

func (s *repeatLine) Read(p []byte) (int, error) { return copy(p, s.line), nil }

// A followed stream of lines a little longer than a line reader's 1 KiB (a JSON log, a stack
// trace), each followed by a wait (Idle): the larger buffers the reader grows to come from a pool,
// as the 4 and 32 KiB ones of a reader that started at 4 KiB did before ed8d653 (0 allocations
// per line), not freshly allocated and zeroed for every line.
func TestBreakFollowBufGrowthPooled(t *testing.T) {
	for _, n := range []int{2000, 10000, 40000} {
		r := NewLineReader(&repeatLine{line: "2024-01-01T10:00:00.123456789Z " + strings.Repeat("a", n) + "\n"}, 0)
		a := testing.AllocsPerRun(100, func() {
			for {
				f, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if f.Last {
					break
				}
			}
			r.Idle()
		})
		r.Release()
		if a >= 0.5 {
			t.Errorf("lines of %d bytes: %.1f allocations per line", n, a)
		}
	}
}
