package export

// Adversarial tests of 1d010ca: a found rotation kept in the checkpoint (After) until a line is
// served, resume as a loop over every errRotated/errGone, m.matched as the read-back proof and
// the probe's verdict, and DropPartial before each stream.

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// storedCheckpoint returns p0/c's checkpoint line(s) as stored, for the logs.
func storedCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".logexport", "checkpoints", "default.jsonl"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"p0"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func previousRequest(r *http.Request) bool { return r.URL.Query().Get("previous") == "true" }

// After is cleared by the first line that ends in the window, written or not. After a rotation
// the first Ties lines with Last's timestamp are taken as stored (README: "as many as are
// stored"); the stream serves the first of two such tied lines (not written, but now in the
// window: skip=1, After=false) and is cut. The next run resumes from that window, without After
// and without the tie count: the second stored tied line is new to it and is stored again.
func TestBreakAfterTieCountLostWhenCutBetweenTies(t *testing.T) {
	sec := time.Now().Add(-time.Minute).Truncate(time.Second)
	x := logserver.Entry{Time: sec.Add(100 * time.Millisecond), Text: "x"}
	n1 := logserver.Entry{Time: sec.Add(300 * time.Millisecond), Text: "n-1"}
	n2 := logserver.Entry{Time: sec.Add(300 * time.Millisecond), Text: "n-2"} // same timestamp
	srv, dir := storedFirst(t, Options{}, x, n1, n2)
	t.Logf("checkpoint: %s", storedCheckpoint(t, dir))
	srv.Rotate("default", "p0", "c")
	// The new file serves the two newest stored lines again (both with Last's timestamp), then a
	// new one.
	srv.Append("default", "p0", "c", n1, n2, logserver.Entry{Time: sec.Add(700 * time.Millisecond), Text: "n-3"})
	rule := func(n int, _ *http.Request) (int, bool) {
		if n == 2 {
			return 1, false // the After stream breaks after n-1
		}
		return -1, false
	}
	res := exportOnce(t, srv, dir, Options{}, rule)
	t.Logf("cut run: err=%v lines=%d gaps=%v file %q; checkpoint %s", res.Err, res.Lines, res.Gaps, readLog(t, dir, "p0", "c"), storedCheckpoint(t, dir))
	res2 := exportOnce(t, srv, dir, Options{}, nil)
	got := readLog(t, dir, "p0", "c")
	t.Logf("next run: err=%v lines=%d gaps=%v file %q", res2.Err, res2.Lines, res2.Gaps, got)
	if want := "x\nn-1\nn-2\nn-3\n"; got != want {
		t.Errorf("file %q, want %q (n-2 was stored before the rotation and is one of the Ties taken as stored)", got, want)
	}
}

// A checkpoint with After (a rotation to an empty file found by the last run) in instance A; A
// restarted since (B logs b-1, b-2), and A's dead container is garbage-collected before the
// run reads it (previous=true answers 400). resume(A, B): catchUp(A) -> errGone, then the probe
// of B with after=Last and an empty window: the probe writes B's lines newer than Last into the
// file, then (not matched: an empty window is never matched) the checkpoint is set back to A,
// the bytes stay; run() then exports B in full: b-1 and b-2 are stored twice.
func TestBreakAfterProbeOfOtherWritesThenFullAgain(t *testing.T) {
	for _, how := range []string{"stored after", "after found in the same run", "empty window"} {
		t.Run(how, func(t *testing.T) {
			if how == "empty window" {
				// No After at all: A had logged nothing at the first export, so its checkpoint's
				// window is empty (skip 0, since zero), which the probe never "matches" either.
				srv, dir := storedFirst(t, Options{})
				restartLogging(srv)
				res := exportOnce(t, srv, dir, Options{}, func(n int, r *http.Request) (int, bool) { return -1, previousRequest(r) })
				got := readLog(t, dir, "p0", "c")
				t.Logf("after restart: err=%v lines=%d gaps=%v file %q", res.Err, res.Lines, res.Gaps, got)
				if want := "b-1\nb-2\n"; got != want {
					t.Errorf("file %q, want %q", got, want)
				}
				return
			}
			srv, dir, _ := storedXN1(t)
			srv.Rotate("default", "p0", "c")
			var rule logRule
			var gaps []Gap
			if how == "stored after" {
				res := exportOnce(t, srv, dir, Options{}, nil)
				gaps = append(gaps, res.Gaps...)
				t.Logf("rotation run: err=%v gaps=%v; checkpoint %s", res.Err, res.Gaps, storedCheckpoint(t, dir))
				if !strings.Contains(storedCheckpoint(t, dir), `"after":true`) {
					t.Fatalf("scenario did not happen: no after in the checkpoint")
				}
				rule = func(n int, r *http.Request) (int, bool) { return -1, previousRequest(r) }
			} else {
				// Requests: 1 A (rotated: empty), 2 probe of B (A's window not there), 3 A
				// again with After: garbage-collected by now, 4 probe of B with After, 5 B full.
				rule = func(n int, r *http.Request) (int, bool) { return -1, n >= 3 && previousRequest(r) }
			}
			restartLogging(srv)
			res := exportOnce(t, srv, dir, Options{}, rule)
			gaps = append(gaps, res.Gaps...)
			got := readLog(t, dir, "p0", "c")
			t.Logf("after restart: err=%v lines=%d gaps=%v file %q", res.Err, res.Lines, res.Gaps, got)
			if want := "x\nn-1\nb-1\nb-2\n"; got != want {
				t.Errorf("file %q, want %q (b-1, b-2 served once by B; A's unstored lines inside a gap)", got, want)
			}
		})
	}
}

// Passes: a follower's catch-up stream (one that ends) writes the first pieces of an unfinished
// long line, longer than the 64 KiB write buffer, so part of it is already in the file; the
// followed stream drops it (DropPartial truncates the file back) and is then cut before a byte.
// The export fails, the file is left as its checkpoint says, and the next run stores the line
// once, whole. Not covered elsewhere: the existing partial-line tests stay inside the buffer.
func TestBreakAfterDropPartialFlushedThenNextStreamFails(t *testing.T) {
	srv, dir, _ := storedXN1(t)
	piece := strings.Repeat("L", 30000)
	now := time.Now()
	srv.Append("default", "p0", "c",
		logserver.Entry{Time: now, Partial: true, Text: piece},
		logserver.Entry{Time: now.Add(time.Millisecond), Partial: true, Text: piece},
		logserver.Entry{Time: now.Add(2 * time.Millisecond), Partial: true, Text: piece})
	rule := func(n int, _ *http.Request) (int, bool) {
		if n == 2 {
			return 0, false // the followed stream breaks at once
		}
		return -1, false
	}
	res := exportOnce(t, srv, dir, Options{Follow: true, CommitInterval: 50 * time.Millisecond}, rule)
	got := readLog(t, dir, "p0", "c")
	t.Logf("follower: err=%v lines=%d gaps=%v; file of %d bytes", res.Err, res.Lines, res.Gaps, len(got))
	if res.Err == nil || got != "x\nn-1\n" {
		t.Errorf("cut follower: err %v, file of %d bytes %.20q; want an error and the file as checkpointed", res.Err, len(got), got)
	}
	srv.Append("default", "p0", "c", logserver.Entry{Time: now.Add(3 * time.Millisecond), Text: "-end"})
	res = exportOnce(t, srv, dir, Options{}, nil)
	got = readLog(t, dir, "p0", "c")
	if want := "x\nn-1\n" + strings.Repeat(piece, 3) + "-end\n"; got != want || res.Err != nil || len(res.Gaps) != 0 {
		t.Errorf("next run: err %v, gaps %v, file of %d bytes; want %d bytes, the long line once", res.Err, res.Gaps, len(got), len(want))
	}
}
