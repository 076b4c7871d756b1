package export

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// Two lines split into partial entries whose first entries are in the second before since and
// whose last are in since's second (stdout's, then stderr's, whose timestamps go back across the
// boundary by a fraction of a millisecond). From since alone, the kubelet serves two
// untimestamped tails before the window; the skipper expected at most one and took the second for
// a rotation: a gap was reported where nothing was lost, and in after mode the second tail failed
// every run after. (Not the tail's doing: a resume from sinceTime alone, -1, did it too.)
func TestBreakTailTwoLeadingTailsAcrossTheSecond(t *testing.T) {
	for _, tail := range []int64{-1, 3, 4, 5} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			S := time.Now().Add(-time.Minute).Truncate(time.Second)
			l.add(logserver.Entry{Time: S.Add(-500 * time.Millisecond), Text: "old"},
				logserver.Entry{Time: S.Add(-400 * time.Microsecond), Partial: true, Text: "a"},
				logserver.Entry{Time: S.Add(100 * time.Microsecond), Text: "b"},
				logserver.Entry{Time: S.Add(-200 * time.Microsecond), Stream: "stderr", Partial: true, Text: "c"},
				logserver.Entry{Time: S.Add(300 * time.Microsecond), Stream: "stderr", Text: "d"},
				logserver.Entry{Time: S.Add(time.Millisecond), Text: "w"})
			res, got := l.resume(t, Options{ResumeTail: tail}, logserver.Entry{Time: S.Add(2 * time.Second), Text: "next"})
			if len(res.Gaps) > 0 {
				t.Errorf("gaps %v, want none (nothing was lost)", res.Gaps)
			}
			checkFile(t, got, l.file())
		})
	}
}

// A stopped container whose last line has no newline (its last entry is partial), resumed with
// tails of every length: stored once, completed, and confirmed, with no gap.
func TestBreakTailStoppedLastLineWithoutNewline(t *testing.T) {
	for tail := int64(-1); tail <= 7; tail++ {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			S := time.Now().Add(-time.Minute).Truncate(time.Second)
			l.add(logserver.Entry{Time: S.Add(100 * time.Millisecond), Text: "w1"},
				logserver.Entry{Time: S.Add(200 * time.Millisecond), Text: "w2"})
			dir := l.stored(t, Options{ResumeTail: tail})
			l.add(logserver.Entry{Time: S.Add(300 * time.Millisecond), Partial: true, Text: "x"},
				logserver.Entry{Time: S.Add(400 * time.Millisecond), Partial: true, Text: "y"})
			l.srv.Terminate("default", "p0", "c", 0)
			for i := range 4 {
				res := tailRun(t, l.srv, dir, Options{ResumeTail: tail})
				if res.Err != nil || len(res.Gaps) > 0 {
					t.Fatalf("run %d: err %v, gaps %v", i, res.Err, res.Gaps)
				}
			}
			checkFile(t, readLog(t, dir, "p0", "c"), "w1\nw2\nxy\n")
		})
	}
}

// A tail response cut at every byte (the API server ends it normally), of a stopped container
// with new lines after the window: whatever a cut run stores, the next runs store the rest, with
// no gap, and the container is confirmed only at its real end.
func TestBreakTailCutAtEveryByte(t *testing.T) {
	S := time.Now().Add(-time.Minute).Truncate(time.Second)
	window := []logserver.Entry{
		{Time: S.Add(100 * time.Millisecond), Text: "w1"},
		{Time: S.Add(200 * time.Millisecond), Partial: true, Text: "w2-"},
		{Time: S.Add(300 * time.Millisecond), Text: "end"},
	}
	fresh := []logserver.Entry{
		{Time: S.Add(400 * time.Millisecond), Text: "n1"},
		{Time: S.Add(1500 * time.Millisecond), Partial: true, Text: "n2"},
	}
	want := "w1\nw2-end\nn1\nn2\n"
	for _, tail := range []int64{2, 3, 4, 5, 6} {
		for cut := int64(0); cut < 200; cut += 3 {
			t.Run(fmt.Sprintf("tail %d cut %d", tail, cut), func(t *testing.T) {
				l := newTailLog(t)
				srv := l.srv
				l.add(window...)
				dir := l.stored(t, Options{ResumeTail: tail})
				l.add(fresh...)
				srv.Terminate("default", "p0", "c", 0)
				// Cut the next run's first tail response (two cut alike at a partial last line
				// are taken as its end, tail or not).
				res, _ := cutTailRun(t, srv, dir, Options{ResumeTail: tail}, cut, false)
				var gaps []Gap
				gaps = append(gaps, res.Gaps...)
				for range 3 {
					r := tailRun(t, srv, dir, Options{ResumeTail: tail})
					gaps = append(gaps, r.Gaps...)
				}
				if len(gaps) > 0 {
					t.Errorf("gaps %v", gaps)
				}
				got := readLog(t, dir, "p0", "c")
				if got != want {
					t.Errorf("file %q, want %q (cut run: err %v)", got, want, res.Err)
				}
			})
		}
	}
}

// The runtime died in the middle of writing its last CRI entry (a node or shim crash): the
// container's log file ends with an entry without its newline, which the kubelet's reader serves
// from sinceTime ("Incomplete line in log file"), and which the export stores, completed, after
// two reads end inside it alike. findTailLineStartIndex does not count an entry without a newline
// and the limited read stops after tailLines entries, so a tail never serves it: the tail's read
// ends at the entry before, matches the window with nothing new, and confirms the container's end.
// Later runs do not ask again, and the line is never stored (no gap).
func TestBreakTailTruncatedLastEntry(t *testing.T) {
	for _, tail := range []int64{-1, 2, 3, 4, 10} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			mine := t.TempDir()
			l := newTailLog(t)
			srv := l.srv
			S := time.Now().Add(-time.Minute).Truncate(time.Second)
			for i := range 5 {
				l.add(logserver.Entry{Time: S.Add(-time.Duration(5-i) * time.Second), Text: fmt.Sprint("old-", i)})
			}
			l.add(logserver.Entry{Time: S.Add(100 * time.Millisecond), Text: "w1"},
				logserver.Entry{Time: S.Add(200 * time.Millisecond), Text: "w2"})
			dir := l.stored(t, Options{ResumeTail: tail})
			// The server's files are in a sibling of this test's temporary directory.
			files, _ := filepath.Glob(filepath.Join(filepath.Dir(mine), "*", "pods", "default_p0_*", "c", "0.log"))
			if len(files) != 1 {
				t.Fatalf("log files %v", files)
			}
			f, err := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(f, "%s stdout F last words", S.Add(300*time.Millisecond).UTC().Format(time.RFC3339Nano))
			f.Close()
			srv.Terminate("default", "p0", "c", 137)
			var requests []int
			for range 4 {
				res := tailRun(t, srv, dir, Options{ResumeTail: tail})
				if res.Err != nil || len(res.Gaps) > 0 {
					t.Errorf("err %v, gaps %v", res.Err, res.Gaps)
				}
				requests = append(requests, srv.LogRequests("default", "p0", "c", ""))
			}
			got := readLog(t, dir, "p0", "c")
			if want := "old-0\nold-1\nold-2\nold-3\nold-4\nw1\nw2\nlast words\n"; got != want {
				t.Errorf("file %q, want the last (truncated) entry stored as from sinceTime alone; log requests so far after each run %v", got, requests)
			}
		})
	}
}
