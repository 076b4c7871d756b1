package export

// A second break attempt on the resume's tail (tailLines, see tail.go), after 0d033ef: the tail
// is kept only if its first line is more than a second older than since, the lines older than
// since are then dropped whole, and the skipper must find the stored window.

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// oldLines appends n lines seconds before S, so that a tail of a few entries can begin more than
// a second before the window.
func oldLines(l *tailLog, S time.Time, n int) {
	for i := range n {
		l.add(logserver.Entry{Time: S.Add(-time.Duration(n-i+4) * time.Second), Text: fmt.Sprint("old-", i)})
	}
}

// A line logged after the stored window whose first entry (stdout, partial) is stamped a moment
// before the window's second and whose last entry is in it (stdout and stderr stamped as the
// runtime reads them: the window's line is stderr's, stamped a moment later). sinceTime=S serves
// only "b", without a timestamp, after the window: every run failed on it, and "next" was never
// stored. Now the tail is skipped, as the tail asked for by tailLines drops the line begun before
// since whole: a line stamped before the checkpoint's second and logged after it is not stored
// (README, what the API cannot give), and the runs go on.
func TestBreakTail2LineBegunBeforeSinceAfterWindow(t *testing.T) {
	for _, tail := range []int64{-1, 4, 5, 8} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			S := time.Now().Add(-time.Minute).Truncate(time.Second)
			oldLines(l, S, 3)
			l.add(logserver.Entry{Time: S.Add(300 * time.Microsecond), Stream: "stderr", Text: "w"})
			dir := l.stored(t, Options{ResumeTail: tail})
			l.add(logserver.Entry{Time: S.Add(-200 * time.Microsecond), Partial: true, Text: "a"},
				logserver.Entry{Time: S.Add(400 * time.Microsecond), Text: "b"},
				logserver.Entry{Time: S.Add(2 * time.Second), Text: "next"})
			var errs []error
			var gaps []Gap
			for range 3 {
				res := tailRun(t, l.srv, dir, Options{ResumeTail: tail})
				if res.Err != nil {
					errs = append(errs, res.Err)
				}
				gaps = append(gaps, res.Gaps...)
			}
			got := readLog(t, dir, "p0", "c")
			t.Logf("errors %v, gaps %v, file %q", errs, gaps, got)
			if len(errs) > 0 || len(gaps) > 0 {
				t.Errorf("3 runs failed %d times, reported gaps %v: %v", len(errs), gaps, errs)
			}
			if want := "old-0\nold-1\nold-2\nw\nnext\n"; got != want {
				t.Errorf("file %q, want %q", got, want)
			}
		})
	}
}

// TestBreakTailCutAtEveryByte terminates the container before the cut run, so no tail is asked
// for (only a running container's is): its cuts never happen. Here the container runs: the tail
// response is cut at every byte, with new lines after the window.
func TestBreakTail2CutRunningAtEveryByte(t *testing.T) {
	S := time.Now().Add(-time.Minute).Truncate(time.Second)
	window := []logserver.Entry{
		{Time: S.Add(-3 * time.Second), Text: "old"},
		{Time: S.Add(100 * time.Millisecond), Text: "w1"},
		{Time: S.Add(200 * time.Millisecond), Partial: true, Text: "w2-"},
		{Time: S.Add(300 * time.Millisecond), Text: "end"},
	}
	fresh := []logserver.Entry{
		{Time: S.Add(400 * time.Millisecond), Text: "n1"},
		{Time: S.Add(1500 * time.Millisecond), Partial: true, Text: "n2"},
		{Time: S.Add(1600 * time.Millisecond), Text: "-n2"},
		{Time: S.Add(1700 * time.Millisecond), Text: "n3"},
	}
	want := "old\nw1\nw2-end\nn1\nn2-n2\nn3\n"
	for _, tail := range []int64{5, 6, 7, 9} {
		for _, toEnd := range []bool{false, true} {
			for cut := int64(0); cut < 330; cut += 7 {
				name := fmt.Sprintf("tail %d cut %d toEnd %v", tail, cut, toEnd)
				t.Run(name, func(t *testing.T) {
					l := newTailLog(t)
					l.add(window...)
					dir := l.stored(t, Options{ResumeTail: tail})
					l.add(fresh...)
					res, asked := cutTailRun(t, l.srv, dir, Options{ResumeTail: tail}, cut, toEnd)
					if !asked {
						t.Fatal("no tail asked for")
					}
					gaps := append([]Gap(nil), res.Gaps...)
					for range 2 {
						r := tailRun(t, l.srv, dir, Options{ResumeTail: tail})
						gaps = append(gaps, r.Gaps...)
						if r.Err != nil {
							t.Errorf("run after the cut: %v", r.Err)
						}
					}
					if len(gaps) > 0 {
						t.Errorf("gaps %v", gaps)
					}
					if got := readLog(t, dir, "p0", "c"); got != want {
						t.Errorf("file %q, want %q (cut run: err %v)", got, want, res.Err)
					}
				})
			}
		}
	}
}

// The container restarts after the run listed it and before its first log request (the tail,
// or with -1 the request from since): the request reaches the new instance. A's new lines
// (previous=true now) and B's must be stored, once each, in order, with no gap.
func TestBreakTail2RestartBeforeTailRequest(t *testing.T) {
	for _, tail := range []int64{-1, 3, 5, 8} {
		for _, bOld := range []bool{false, true} {
			t.Run(fmt.Sprintf("tail %d B stamped old %v", tail, bOld), func(t *testing.T) {
				l := newTailLog(t)
				srv := l.srv
				S := time.Now().Add(-time.Minute).Truncate(time.Second)
				for i := range 3 {
					l.add(logserver.Entry{Time: S.Add(-time.Duration(5-i) * time.Second), Text: fmt.Sprint("old-", i)})
				}
				l.add(logserver.Entry{Time: S.Add(100 * time.Millisecond), Text: "w"})
				dir := l.stored(t, Options{ResumeTail: tail})
				srv.Append("default", "p0", "c", logserver.Entry{Time: S.Add(300 * time.Millisecond), Text: "a-new"})
				done := false
				srv.OnLogRequest(func(_, _ string, o *corev1.PodLogOptions) {
					if done || o.Previous {
						return
					}
					done = true
					srv.Restart("default", "p0", "c")
					bt := S.Add(2 * time.Second)
					if bOld {
						// B's node clock stepped back: its first lines are older than A's window.
						bt = S.Add(-3 * time.Second)
					}
					srv.Append("default", "p0", "c", logserver.Entry{Time: bt, Text: "w"},
						logserver.Entry{Time: bt.Add(time.Millisecond), Text: "b-1"})
				})
				res := tailRun(t, srv, dir, Options{ResumeTail: tail})
				srv.OnLogRequest(nil)
				var gaps []Gap
				gaps = append(gaps, res.Gaps...)
				if res.Err != nil {
					t.Logf("run 2: %v", res.Err)
				}
				r := tailRun(t, srv, dir, Options{ResumeTail: tail})
				gaps = append(gaps, r.Gaps...)
				got := readLog(t, dir, "p0", "c")
				t.Logf("gaps %v file %q", gaps, got)
				if want := "old-0\nold-1\nold-2\nw\na-new\nw\nb-1\n"; got != want && len(gaps) == 0 {
					checkFile(t, got, want)
				}
			})
		}
	}
}

// A line begun a moment before the window's second (stdout, partial) and ended in it, between two
// window lines (stderr's, stamped a moment later). Stored by a full read as "ab", outside the
// window. From since, its tail "b" comes untimestamped between the window's lines and is hashed
// as one of them: the window does not match, and a rotation is reported where nothing was lost.
// (A tail drops the line whole and matches.)
func TestBreakTail2TailBetweenWindowLines(t *testing.T) {
	for _, tail := range []int64{-1, 8} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			S := time.Now().Add(-time.Minute).Truncate(time.Second)
			oldLines(l, S, 3)
			l.add(logserver.Entry{Time: S.Add(100 * time.Microsecond), Stream: "stderr", Text: "w1"},
				logserver.Entry{Time: S.Add(-100 * time.Microsecond), Partial: true, Text: "a"},
				logserver.Entry{Time: S.Add(200 * time.Microsecond), Text: "b"},
				logserver.Entry{Time: S.Add(300 * time.Microsecond), Stream: "stderr", Text: "w2"})
			dir := l.stored(t, Options{ResumeTail: tail})
			l.add(logserver.Entry{Time: S.Add(2 * time.Second), Text: "next"})
			for run := range 3 {
				res := tailRun(t, l.srv, dir, Options{ResumeTail: tail})
				if res.Err != nil {
					t.Errorf("run %d: %v", run+2, res.Err)
				}
				if len(res.Gaps) > 0 {
					t.Errorf("run %d: gaps %v, want none (nothing was lost)", run+2, res.Gaps)
				}
			}
			checkFile(t, readLog(t, dir, "p0", "c"), l.file())
		})
	}
}
