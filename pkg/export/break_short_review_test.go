package export

// A helper's attempt (nineteenth session) to break the re-read of a stream that ends inside the
// stored lines, the confirmation of a stale end after a rotation, the end kept by a failed run,
// and the gaps' whole-second bounds. The first two tests failed on 8517317 and pass since; the
// others held, and are kept as cases the model does not generate.

import (
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// A rotation loses line L, logged (stderr) just before the rotation; the first line after the
// rotation, F (stdout), was read by the runtime a little earlier than L and carries an older
// timestamp (the reason gapFrom exists, at the other end of the gap). A gap that ended at F's
// timestamp left L, lost, outside every reported gap: it ends at the end of F's second.
func TestBreakReview19RotationGapEndMissesBackwardLine(t *testing.T) {
	srv, clock, x, dir := storedAB(t)
	l := x.Add(1350 * time.Millisecond)
	f := x.Add(1300 * time.Millisecond)
	srv.Append("default", "p0", "c", logserver.Entry{Time: l, Text: "L-lost", Stream: "stderr"})
	srv.Rotate("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: f, Text: "F-first"})
	*clock = x.Add(2 * time.Second)
	res, _ := exportShortAt(t, srv, dir, Options{}, nil, nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	got := readLog(t, dir, "p0", "c")
	t.Logf("file %q, gaps %v, stored %v", got, res.Gaps, storedGaps(t, dir))
	if !strings.Contains(got, "L-lost") && !covered(l, res.Gaps) {
		t.Fatalf("line L at %s lost and in no reported gap: %v", l.Format(time.RFC3339Nano), res.Gaps)
	}
}

// The prove gap (pod gone before the stream's instance could be proven) runs from the newest
// stored line to the oldest line served: after a node clock that stepped back, it ended before it
// started (gapTo).
func TestBreakReview19ProveGapFromAfterTo(t *testing.T) {
	srv, clock := clockedServer(t)
	x := clock.Truncate(time.Second)
	srv.Append("default", "p0", "c",
		logserver.Entry{Time: x.Add(100 * time.Millisecond), Text: "a-1"},
		logserver.Entry{Time: x.Add(10 * time.Second), Text: "a-2"})
	*clock = x.Add(10*time.Second + 500*time.Millisecond)
	dir := firstShortRun(t, srv, 2)
	// The node's clock steps back 5s; the container restarts.
	*clock = x.Add(5 * time.Second)
	srv.Restart("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: x.Add(6 * time.Second), Text: "b-1"})
	tgt := breakTarget(t, srv, "p0", "c")
	res := exportDeletingPod(t, srv, dir, tgt)
	t.Logf("result err %v, lines %d, gaps %v; file %q", res.Err, res.Lines, res.Gaps, readLog(t, dir, "p0", "c"))
	for _, g := range res.Gaps {
		if g.To != nil && !g.From.IsZero() && g.From.After(*g.To) {
			t.Fatalf("gap %v: From after To", g)
		}
	}
}

// A running container's resume is cut inside the stored window; the container logs before the
// next look. Each line once.
func TestBreakReview19CutInsideWindowThenLogs(t *testing.T) {
	srv, clock := clockedServer(t)
	x := clock.Truncate(time.Second)
	srv.Append("default", "p0", "c",
		logserver.Entry{Time: x.Add(100 * time.Millisecond), Text: "a-1"},
		logserver.Entry{Time: x.Add(200 * time.Millisecond), Text: "a-2", Stream: "stderr"},
		logserver.Entry{Time: x.Add(150 * time.Millisecond), Text: "a-3"})
	*clock = x.Add(300 * time.Millisecond)
	dir := firstShortRun(t, srv, 3)
	line := len("2006-01-02T15:04:05.000000000Z ") + len("a-1\n")
	for _, cut := range []int{0, 5, line, line + 3, 2 * line} {
		srv.Append("default", "p0", "c", logserver.Entry{Time: clock.Add(10 * time.Millisecond), Text: "pre"})
		*clock = clock.Add(20 * time.Millisecond)
		res, _ := exportShortAt(t, srv, dir, Options{}, func(n int) {
			if n == 2 {
				srv.Append("default", "p0", "c", logserver.Entry{Time: clock.Add(10 * time.Millisecond), Text: "between"})
				*clock = clock.Add(20 * time.Millisecond)
			}
		}, cutLooks(map[int]int{1: cut}))
		if res.Err != nil {
			t.Fatalf("cut %d: %v", cut, res.Err)
		}
	}
	if res, _ := exportShortAt(t, srv, dir, Options{}, nil, nil); res.Err != nil {
		t.Fatal(res.Err)
	}
	got := readLog(t, dir, "p0", "c")
	want := "a-1\na-2\na-3\n" + strings.Repeat("pre\nbetween\n", 5)
	if got != want {
		t.Fatalf("file %q, want %q", got, want)
	}
}

// A running container's resume is cut inside the stored window; before the next look it
// logs once more and restarts (status lag: the export still asks previous=false for A).
func TestBreakReview19CutInsideWindowThenRestart(t *testing.T) {
	line := len("2006-01-02T15:04:05.000000000Z ") + len("a-1\n")
	for _, tc := range []struct {
		name   string
		cut    int
		bLines bool
	}{
		{"cut at 0, B empty", 0, false},
		{"cut at 0, B logs", 0, true},
		{"cut after a line, B empty", line, false},
		{"cut after a line, B logs", line, true},
		{"cut inside a line, B empty", line + 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, clock := clockedServer(t)
			x := clock.Truncate(time.Second)
			srv.Append("default", "p0", "c",
				logserver.Entry{Time: x.Add(100 * time.Millisecond), Text: "a-1"},
				logserver.Entry{Time: x.Add(200 * time.Millisecond), Text: "a-2"},
				logserver.Entry{Time: x.Add(300 * time.Millisecond), Text: "a-3"})
			*clock = x.Add(400 * time.Millisecond)
			dir := firstShortRun(t, srv, 3)
			srv.Append("default", "p0", "c", logserver.Entry{Time: x.Add(500 * time.Millisecond), Text: "a-4"})
			*clock = x.Add(2 * time.Second)
			res, _ := exportShortAt(t, srv, dir, Options{}, func(n int) {
				if n == 2 {
					srv.Restart("default", "p0", "c")
					if tc.bLines {
						*clock = clock.Add(time.Second)
						srv.Append("default", "p0", "c", logserver.Entry{Time: *clock, Text: "b-1"})
					}
				}
			}, cutLooks(map[int]int{1: tc.cut}))
			t.Logf("run 2: lines %d gaps %v err %v", res.Lines, res.Gaps, res.Err)
			for i := 0; i < 2; i++ {
				res, _ = exportShortAt(t, srv, dir, Options{}, nil, nil)
				t.Logf("run %d: lines %d gaps %v err %v", i+3, res.Lines, res.Gaps, res.Err)
			}
			want := "a-1\na-2\na-3\na-4\n"
			if tc.bLines {
				want += "b-1\n"
			}
			if got := readLog(t, dir, "p0", "c"); got != want {
				t.Fatalf("file %q, want %q; gaps %v", got, want, storedGaps(t, dir))
			}
		})
	}
}

// review19Rotated: p0/c logged a-1, b-2 (stored), was rotated, logged c-3 (older than b-2, same
// second) and d-4 (newer), and finished. Run 2 found the rotation with its responses cut so that
// it wrote nothing (window unknown, After). Returns the server, dir, clock and d-4's time.
func review19Rotated(t *testing.T, cutRun2 int) (*logserver.Server, string, *time.Time, time.Time) {
	t.Helper()
	srv, clock, x, dir := storedAB(t)
	srv.Rotate("default", "p0", "c")
	d4 := x.Add(1200 * time.Millisecond)
	srv.Append("default", "p0", "c",
		logserver.Entry{Time: x.Add(300 * time.Millisecond), Text: "c-3", Stream: "stderr"},
		logserver.Entry{Time: d4, Text: "d-4"})
	*clock = x.Add(3 * time.Second)
	srv.Terminate("default", "p0", "c", 0)
	return srv, dir, clock, d4
}

// After a rotation (window unknown), a finished container's looks are cut at the same byte,
// after the stale line c-3 and before d-4: staleEnd takes two identical looks for the end and
// confirms it; d-4 is never requested again. It must then at least lie inside a reported gap.
func TestBreakReview19StaleEndSameCutConfirmsShortEnd(t *testing.T) {
	srv, dir, _, d4 := review19Rotated(t, 0)
	line := len("2006-01-02T15:04:05.000000000Z ") + len("c-3\n")
	var all []Gap
	res, _ := exportShortAt(t, srv, dir, Options{}, nil, func(n int) int {
		// 1: the resume finds the rotation (whole); then two looks cut after c-3.
		if n >= 2 {
			return line
		}
		return -1
	})
	all = append(all, res.Gaps...)
	cp := storedCheckpointOf(t, dir)
	t.Logf("run 2: lines %d gaps %v err %v; checkpoint Complete=%q Confirmed=%v After=%v", res.Lines, res.Gaps, res.Err, cp.Complete, cp.Confirmed, cp.After)
	res, requests := exportShortAt(t, srv, dir, Options{}, nil, nil)
	all = append(all, res.Gaps...)
	t.Logf("run 3: %d requests, lines %d, gaps %v, recorded %v", requests, res.Lines, res.Gaps, storedGaps(t, dir))
	got := readLog(t, dir, "p0", "c")
	if !strings.Contains(got, "d-4") && !covered(d4, all) {
		t.Fatalf("d-4 neither stored nor in a gap: file %q, gaps %v", got, all)
	}
	if !strings.Contains(got, "d-4") {
		t.Logf("NOTE: d-4 never stored (container confirmed at the cut), only inside the open rotation gap")
	}
}

// Status lag: the listed status says A finished (After mode after a rotation); between
// staleEnd's two looks the container restarts, and previous=false serves B.
func TestBreakReview19StaleEndRestartBetweenLooks(t *testing.T) {
	for _, bLogs := range []bool{false, true} {
		t.Run(map[bool]string{false: "B empty", true: "B logs"}[bLogs], func(t *testing.T) {
			srv, dir, clock, _ := review19Rotated(t, 0)
			line := len("2006-01-02T15:04:05.000000000Z ") + len("c-3\n")
			// Run 2: looks cut after c-3, at different bytes, so nothing is confirmed; After mode.
			res, _ := exportShortAt(t, srv, dir, Options{}, nil, cutLooks(map[int]int{2: line, 3: line + 1, 4: line + 2}))
			cp := storedCheckpointOf(t, dir)
			t.Logf("run 2: lines %d gaps %v err %v; cp Complete=%q Confirmed=%v After=%v", res.Lines, res.Gaps, res.Err, cp.Complete, cp.Confirmed, cp.After)
			// Run 3: cut at look 1 (after c-3); restart before look 2.
			res, _ = exportShortAt(t, srv, dir, Options{}, func(n int) {
				if n == 2 {
					srv.Restart("default", "p0", "c")
					if bLogs {
						*clock = clock.Add(time.Second)
						srv.Append("default", "p0", "c", logserver.Entry{Time: *clock, Text: "b-1"})
					}
				}
			}, cutLooks(map[int]int{1: line}))
			cp = storedCheckpointOf(t, dir)
			t.Logf("run 3: lines %d gaps %v err %v; cp Instance=%q Complete=%q Confirmed=%v After=%v", res.Lines, res.Gaps, res.Err, cp.Instance, cp.Complete, cp.Confirmed, cp.After)
			for i := 0; i < 2; i++ {
				res, _ = exportShortAt(t, srv, dir, Options{}, nil, nil)
				t.Logf("run %d: lines %d gaps %v err %v", i+4, res.Lines, res.Gaps, res.Err)
			}
			got := readLog(t, dir, "p0", "c")
			want := "a-1\nb-2\nd-4\n"
			if bLogs {
				want += "b-1\n"
			}
			if got != want {
				t.Fatalf("file %q, want %q", got, want)
			}
		})
	}
}

// The resume's stream begins with the untimestamped tail of a long line split into partial
// entries (its first entry older than the window's second), then the window's lines, one of them
// long and split too; the first look is cut at many places, the container logs before the next.
func TestBreakReview19CutInsideTailAndPartials(t *testing.T) {
	big := strings.Repeat("x", 40)
	for cut := 0; cut < 260; cut += 7 {
		srv, clock := clockedServer(t)
		x := clock.Truncate(time.Second).Add(time.Second)
		srv.Append("default", "p0", "c",
			logserver.Entry{Time: x.Add(-100 * time.Millisecond), Text: "L1-" + big, Partial: true},
			logserver.Entry{Time: x.Add(100 * time.Millisecond), Text: "-mid-" + big, Partial: true},
			logserver.Entry{Time: x.Add(200 * time.Millisecond), Text: "-end"},
			logserver.Entry{Time: x.Add(300 * time.Millisecond), Text: "L2-" + big, Partial: true},
			logserver.Entry{Time: x.Add(350 * time.Millisecond), Text: "-end"},
			logserver.Entry{Time: x.Add(400 * time.Millisecond), Text: "a-3"})
		*clock = x.Add(500 * time.Millisecond)
		dir := firstShortRun(t, srv, 3)
		appended := false
		res, _ := exportShortAt(t, srv, dir, Options{}, func(n int) {
			if n == 2 {
				appended = true
				srv.Append("default", "p0", "c", logserver.Entry{Time: x.Add(600 * time.Millisecond), Text: "between"})
			}
		}, cutLooks(map[int]int{1: cut}))
		if res.Err != nil {
			t.Fatalf("cut %d: %v", cut, res.Err)
		}
		if !appended {
			// The cut was past the response's end: no second look.
			srv.Append("default", "p0", "c", logserver.Entry{Time: x.Add(600 * time.Millisecond), Text: "between"})
		}
		exportShortAt(t, srv, dir, Options{}, nil, nil)
		want := "L1-" + big + "-mid-" + big + "-end\nL2-" + big + "-end\na-3\nbetween\n"
		if got := readLog(t, dir, "p0", "c"); got != want {
			t.Fatalf("cut %d: file %q, want %q (gaps %v)", cut, got, want, res.Gaps)
		}
		if len(res.Gaps) > 0 {
			t.Fatalf("cut %d: gaps %v for nothing lost", cut, res.Gaps)
		}
	}
}

// A finished container whose last line has no newline and is split into partial
// entries; a confirming run's looks are cut inside the stored window at different places, then
// whole. Each line once, and the end confirmed.
func TestBreakReview19FinishedPartialLastCut(t *testing.T) {
	big := strings.Repeat("y", 40)
	for cut := 0; cut < 200; cut += 9 {
		srv, clock := clockedServer(t)
		x := clock.Truncate(time.Second)
		srv.Append("default", "p0", "c",
			logserver.Entry{Time: x.Add(100 * time.Millisecond), Text: "a-1"},
			logserver.Entry{Time: x.Add(300 * time.Millisecond), Text: "L-" + big, Partial: true},
			logserver.Entry{Time: x.Add(350 * time.Millisecond), Text: "-end"})
		*clock = x.Add(2 * time.Second)
		srv.Terminate("default", "p0", "c", 0)
		dir := firstShortRun(t, srv, 2)
		res, _ := exportShortAt(t, srv, dir, Options{}, nil, cutLooks(map[int]int{1: cut, 2: cut + 3}))
		_, requests := exportShortAt(t, srv, dir, Options{}, nil, nil)
		want := "a-1\nL-" + big + "-end\n"
		if got := readLog(t, dir, "p0", "c"); got != want || len(res.Gaps) > 0 {
			t.Fatalf("cut %d: file %q, want %q; gaps %v, err %v", cut, got, want, res.Gaps, res.Err)
		}
		if res.Err == nil && requests != 0 {
			t.Logf("cut %d: run after asked %d times (cp %+v)", cut, requests, storedCheckpointOf(t, dir))
		}
	}
}

// A's end read once (Complete, unconfirmed); A restarts (previous now) and B logs; a run cut
// inside A's stored window at every look fails and keeps Complete=A. The runs after must store
// B's lines, and A's, once.
func TestBreakReview19KeptCompleteThenRestart(t *testing.T) {
	srv, clock := clockedServer(t)
	x := clock.Truncate(time.Second)
	srv.Append("default", "p0", "c",
		logserver.Entry{Time: x.Add(100 * time.Millisecond), Text: "a-1"},
		logserver.Entry{Time: x.Add(200 * time.Millisecond), Text: "a-2"})
	*clock = x.Add(2 * time.Second)
	srv.Terminate("default", "p0", "c", 0)
	dir := firstShortRun(t, srv, 2)
	before := *storedCheckpointOf(t, dir)
	*clock = x.Add(3 * time.Second)
	srv.Restart("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: x.Add(3500 * time.Millisecond), Text: "b-1"})
	res, _ := exportShortAt(t, srv, dir, Options{}, nil, func(n int) int {
		if n <= 3 {
			return n * 5
		}
		return -1
	})
	after := *storedCheckpointOf(t, dir)
	t.Logf("run 2: err %v; checkpoint unchanged: %v (Complete %q Confirmed %v)", res.Err, before == after, after.Complete, after.Confirmed)
	for i := 0; i < 3; i++ {
		res, _ = exportShortAt(t, srv, dir, Options{}, nil, nil)
		t.Logf("run %d: lines %d gaps %v err %v", i+3, res.Lines, res.Gaps, res.Err)
	}
	if got := readLog(t, dir, "p0", "c"); got != "a-1\na-2\nb-1\n" {
		t.Fatalf("file %q", got)
	}
}
