package export

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// A follower with the smallest buffer (64 bytes), a short commit interval and reconnects at
// random moments, served lines of which many are longer than the buffer, some split into
// partial entries that come in later appends (the stream waits inside them, CommitLines saves):
// the file must end up exactly the log.
func TestBreak60RandomLongLines(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			l := newTailLog(t)
			clk := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
			next := func() time.Time {
				steps := []time.Duration{0, time.Microsecond, time.Millisecond, 400 * time.Millisecond, 1100 * time.Millisecond}
				if d := steps[rng.Intn(len(steps))]; d > 0 {
					clk = clk.Add(time.Duration(1 + rng.Int63n(int64(d))))
				}
				return clk
			}
			l.add(logserver.Entry{Time: next(), Text: "first"})
			dir := l.stored(t, Options{})
			stamps := rng.Intn(2) == 0
			f := &ftFollower{t: t, srv: l.srv, dir: dir, opts: Options{Follow: true, Timestamps: stamps,
				CommitInterval: time.Duration(1+rng.Intn(30)) * time.Millisecond, BufferSize: 64}}
			if stamps {
				// The stored run wrote without timestamps: start over with them.
				dir = t.TempDir()
				f.dir = dir
			}
			f.start(seed, true)
			defer f.stop()
			open := false
			n := 0
			var hist []string
			for step := range 40 {
				var es []logserver.Entry
				for range 1 + rng.Intn(4) {
					n++
					text := fmt.Sprintf("l%d-%s", n, strings.Repeat(string(rune('a'+n%26)), rng.Intn(3)*rng.Intn(150)))
					e := logserver.Entry{Time: next(), Text: text}
					if rng.Intn(3) == 0 {
						e.Partial = true
					}
					if open && rng.Intn(2) == 0 {
						e.Time = es0time(es, clk)
					}
					open = e.Partial
					es = append(es, e)
				}
				l.add(es...)
				hist = append(hist, fmt.Sprintf("%d: %d entries, open=%v", step, len(es), open))
				time.Sleep(time.Duration(rng.Intn(40)) * time.Millisecond)
			}
			if open {
				l.add(logserver.Entry{Time: next(), Text: "close"})
			}
			l.add(logserver.Entry{Time: next(), Text: "last"})
			want := l.file()
			if stamps {
				// The file holds the served timestamps: compare without them.
				got, ok := waitStripped(f, want, 10*time.Second)
				if !ok {
					t.Fatalf("seed %d: file (stripped) %s\n%s", seed, diffDesc(got, want), f.report())
				}
				return
			}
			if got, ok := f.wait(want, 10*time.Second); !ok {
				t.Fatalf("seed %d (interval %v): file %s\n%s", seed, f.opts.CommitInterval, diffDesc(got, want), f.report())
			}
			f.stop()
			if got := readLog(t, dir, "p0", "c"); got != want {
				t.Fatalf("seed %d: file after stop %s", seed, diffDesc(got, want))
			}
		})
	}
}

func es0time(es []logserver.Entry, clk time.Time) time.Time { return clk }

func waitStripped(f *ftFollower, want string, d time.Duration) (string, bool) {
	var got string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		raw := completeLines(readLog(f.t, f.dir, "p0", "c"))
		var b strings.Builder
		for _, ln := range strings.SplitAfter(raw, "\n") {
			if ln == "" {
				continue
			}
			if i := strings.IndexByte(ln, ' '); i >= 0 {
				ln = ln[i+1:]
			}
			b.WriteString(ln)
		}
		if got = b.String(); got == want {
			return got, true
		}
	}
	return got, false
}

func diffDesc(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("%d lines (%d bytes), want %d lines (%d bytes); first difference at byte %d: got %q, want %q",
		strings.Count(got, "\n"), len(got), strings.Count(want, "\n"), len(want), i,
		got[max(0, i-60):min(len(got), i+60)], want[max(0, i-60):min(len(want), i+60)])
}
