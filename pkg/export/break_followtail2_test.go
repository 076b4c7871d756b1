package export

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// The log is rotated (to an empty file) between the catch-up stream, which read every line, and
// the followed stream; lines come to the new file after the followed stream opened it.
func TestBreakFollowTailRotatedBeforeFollowedStream(t *testing.T) {
	for _, tail := range []int64{-1, 0, 3, 8} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			srv := l.srv
			sec := time.Now().Add(-time.Minute).Truncate(time.Second)
			for i := range 5 {
				l.add(logserver.Entry{Time: sec.Add(time.Duration(i) * 100 * time.Millisecond), Text: fmt.Sprint("a-", i)})
			}
			dir := l.stored(t, Options{ResumeTail: tail})
			l.add(logserver.Entry{Time: sec.Add(600 * time.Millisecond), Text: "a-5"})
			var armed atomic.Bool
			armed.Store(true)
			var log []string
			srv.OnLogRequest(func(_, _ string, o *corev1.PodLogOptions) {
				log = append(log, fmt.Sprintf("follow=%v tail=%v since=%v", o.Follow, o.TailLines != nil, o.SinceTime))
				if o.Follow && armed.CompareAndSwap(true, false) {
					srv.Rotate("default", "p0", "c")
				}
			})
			f := &ftFollower{t: t, srv: srv, dir: dir, opts: Options{Follow: true, CommitInterval: 5 * time.Millisecond, ResumeTail: tail}}
			f.start(1, false)
			defer f.stop()
			time.Sleep(300 * time.Millisecond)
			l.add(logserver.Entry{Time: sec.Add(3 * time.Second), Text: "b-1"}, logserver.Entry{Time: sec.Add(3100 * time.Millisecond), Text: "b-2"})
			got, ok := f.wait(l.file(), 3*time.Second)
			f.stop()
			if !ok {
				t.Errorf("file %q, want %q\n%s\nrequests %q", got, l.file(), f.report(), log)
			}
		})
	}
}

// A follower is served a complete line and, in the same read, the first piece (a P entry) of the
// next one. The complete line was neither written out nor checkpointed while the next one was
// unfinished (the reader waited inside the line, and idle ran only with nothing buffered): not a
// loss (a stop commits it), but a line that came stayed invisible, and a SIGKILL fetched it
// again, for as long as the runtime took to finish the other line. With and without a tail.
func TestBreakFollowTailLineBehindPartial(t *testing.T) {
	for _, tail := range []int64{-1, 3} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			srv := l.srv
			sec := time.Now().Add(-time.Minute).Truncate(time.Second)
			l.add(logserver.Entry{Time: sec.Add(100 * time.Millisecond), Text: "a-1"})
			dir := l.stored(t, Options{ResumeTail: tail})
			f := &ftFollower{t: t, srv: srv, dir: dir, opts: Options{Follow: true, CommitInterval: 5 * time.Millisecond, ResumeTail: tail}}
			f.start(1, false)
			defer f.stop()
			time.Sleep(200 * time.Millisecond) // following
			l.add(logserver.Entry{Time: sec.Add(2 * time.Second), Text: "a-2"}, logserver.Entry{Time: sec.Add(2*time.Second + 1), Partial: true, Text: "long-"})
			if got, ok := f.wait("a-1\na-2\n", 2*time.Second); !ok {
				t.Errorf("2s after a-2 came, the file holds %q (a-2 waits for the unfinished line after it)", got)
			}
		})
	}
}
