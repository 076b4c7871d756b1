package export

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// 4d67a99 saves the checkpoint at the first fragment of every line longer than the reader's
// buffer that follows unsaved whole lines, whatever CommitInterval says: a followed container
// that logs such lines among short ones gets a checkpoint (two syncs; in a bucket, a segment
// object and a checkpoint PUT, where --segment-interval promises one object per interval) per
// long line, in a backlog read too (00b7c3c saved only in idle, once caught up). Options.Follow
// says "saving the checkpoint at most every CommitInterval while lines arrive": with an interval
// of an hour, lines served within a second must cost at most one save. The file itself stays
// exact (checked too).
func TestBreak59LongLinesSaveAtMostEveryInterval(t *testing.T) {
	const pairs = 10
	for _, tc := range []struct {
		name   string
		burst  bool          // all pairs in one append (a backlog read), else one by one
		spaced time.Duration // between pairs when not a burst
	}{
		{"one by one", false, 30 * time.Millisecond},
		{"a backlog", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTailLog(t)
			sec := time.Now().Add(-time.Minute).Truncate(time.Second)
			l.add(logserver.Entry{Time: sec, Text: "a-0"})
			dir := l.stored(t, Options{})
			m := &countMetrics{}
			f := &ftFollower{t: t, srv: l.srv, dir: dir, opts: Options{Follow: true, CommitInterval: time.Hour, BufferSize: 4096, Metrics: m}}
			f.start(1, false)
			t.Cleanup(f.stop)
			time.Sleep(300 * time.Millisecond) // following; the stream's first save is done
			m.mu.Lock()
			base := m.saves
			m.mu.Unlock()

			at := sec.Add(time.Second)
			var es []logserver.Entry
			for i := range pairs {
				at = at.Add(time.Millisecond)
				short := logserver.Entry{Time: at, Text: fmt.Sprint("s-", i)}
				at = at.Add(time.Millisecond)
				long := logserver.Entry{Time: at, Text: strings.Repeat(fmt.Sprint(i%10), 6000)} // > the 4096-byte buffer
				if tc.burst {
					es = append(es, short, long)
					continue
				}
				l.add(short, long)
				time.Sleep(tc.spaced)
			}
			if tc.burst {
				l.add(es...)
			}
			if got, ok := f.wait(l.file(), 5*time.Second); !ok {
				t.Fatalf("file %q, want %q\n%s", tailOf(got), tailOf(l.file()), f.report())
			}
			time.Sleep(100 * time.Millisecond)
			m.mu.Lock()
			saves := m.saves - base
			m.mu.Unlock()
			if saves > 1 {
				t.Errorf("%d checkpoints saved for %d short and %d long lines served within %v, with CommitInterval an hour (want at most 1): a save per line longer than the buffer\n%s",
					saves, pairs, pairs, time.Duration(pairs)*(tc.spaced+2*time.Millisecond), f.report())
			}
			f.stop()
			if got := readLog(t, dir, "p0", "c"); got != l.file() {
				t.Fatalf("file after stop: %q, want %q", tailOf(got), tailOf(l.file()))
			}
		})
	}
}
