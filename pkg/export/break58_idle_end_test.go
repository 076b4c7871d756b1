package export

import (
	"fmt"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// A follower waits in idle (save timer pending) inside a line begun after a whole one. Then the
// container restarts, ending the followed stream inside that line: the whole line is saved once,
// the unfinished one is stored completed (the instance stopped), and the new instance's lines
// follow, each once.
func TestBreak58IdlePartialThenRestart(t *testing.T) {
	l, f, dir, sec := followBehindBegunLine(t, 0, "open-", false)
	srv := l.srv
	checkCommitted(t, dir, int64(len("a-0\nb-1\nb-2\n")))
	srv.Restart("default", "p0", "c")
	// The stopped instance's unfinished line is stored completed.
	l.want, l.line = append(l.want, l.line), ""
	l.add(logserver.Entry{Time: sec.Add(3 * time.Second), Text: "c-1"}, logserver.Entry{Time: sec.Add(3*time.Second + time.Millisecond), Text: "c-2"})
	if got, ok := f.wait(l.file(), 5*time.Second); !ok {
		t.Fatalf("file %q, want %q\n%s", got, l.file(), f.report())
	}
	f.stop()
	if got := readLog(t, dir, "p0", "c"); got != l.file() {
		t.Fatalf("file after stop %q, want %q", got, l.file())
	}
}

// The follower reconnects (its export's context ends) while idle waits inside a begun line with
// the save timer pending: the whole lines are saved once, and the next stream (from the tail or
// from since) serves the begun line whole, once.
func TestBreak58IdlePartialReconnect(t *testing.T) {
	for _, tail := range []int64{-1, 3} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			srv := l.srv
			sec := time.Now().Add(-time.Minute).Truncate(time.Second)
			for i := range 5 {
				l.add(logserver.Entry{Time: sec.Add(time.Duration(i) * 10 * time.Millisecond), Text: fmt.Sprint("a-", i)})
			}
			dir := l.stored(t, Options{ResumeTail: tail})
			f := &ftFollower{t: t, srv: srv, dir: dir, opts: Options{Follow: true, CommitInterval: time.Second, ResumeTail: tail}}
			f.start(1, false)
			defer f.stop()
			time.Sleep(300 * time.Millisecond)
			for i := range 3 {
				at := sec.Add(time.Duration(2+i) * time.Second)
				l.add(logserver.Entry{Time: at, Text: fmt.Sprint("b-", i)})
				time.Sleep(20 * time.Millisecond)
				l.add(logserver.Entry{Time: at.Add(time.Millisecond), Text: fmt.Sprint("c-", i)}) // timer pending
				time.Sleep(20 * time.Millisecond)
				l.add(logserver.Entry{Time: at.Add(2 * time.Millisecond), Partial: true, Text: "open-"})
				time.Sleep(50 * time.Millisecond) // idle waits inside the begun line
				f.interrupt()
				time.Sleep(50 * time.Millisecond)
				l.add(logserver.Entry{Time: at.Add(3 * time.Millisecond), Text: fmt.Sprint("end-", i)})
				if got, ok := f.wait(l.file(), 3*time.Second); !ok {
					t.Fatalf("step %d: file %q, want %q\n%s", i, got, l.file(), f.report())
				}
			}
			f.stop()
			if got := readLog(t, dir, "p0", "c"); got != l.file() {
				t.Fatalf("file after stop %q, want %q\n%s", got, l.file(), f.report())
			}
			checkCommitted(t, dir, int64(len(l.file())))
			if len(f.errs) > 0 || len(f.gaps) > 0 {
				t.Errorf("reported: %s", f.report())
			}
		})
	}
}
