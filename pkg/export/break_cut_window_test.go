package export

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// From the review of 34a2f1f (reverted): a finished container's confirming read is cut inside
// the stored window (taken as a rotation: the window is unknown, After), the next read cut just
// after the line with the newest timestamp, with an older line after it (stdout and stderr
// interleaved). Taking what that read served as the window again doubled the older line in the
// next run, and then confirmed the end. Each line must stay once, whatever the runs after.
func TestFinishedCutAfterNewestTieBackwards(t *testing.T) {
	srv, clock := clockedServer(t)
	srv.Append("default", "p0", "c",
		logserver.Entry{Time: clock.Add(0), Text: "a-1"},
		logserver.Entry{Time: clock.Add(5 * time.Millisecond), Text: "b-2", Stream: "stderr"},
		logserver.Entry{Time: clock.Add(3 * time.Millisecond), Text: "c-3"})
	*clock = clock.Add(2 * time.Second)
	srv.Terminate("default", "p0", "c", 0)
	dir := t.TempDir()
	line := len("2006-01-02T15:04:05.000000000Z ") + len("a-1\n")
	for run := 1; run <= 5; run++ {
		res, _ := exportShort(t, srv, dir, Options{}, func(n int) int {
			switch {
			case run == 2 && n == 1:
				return line
			case run == 2 && n == 2:
				return 2 * line
			}
			return -1
		})
		if res.Err != nil {
			t.Fatalf("run %d: %v", run, res.Err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "default", "p0", "c.log")); err != nil || string(got) != "a-1\nb-2\nc-3\n" {
			t.Fatalf("run %d: file %q, %v; want each line once", run, got, err)
		}
	}
}

// A finished container's confirming read cut inside the stored lines (the API server ends a
// response normally when its copy from the kubelet breaks off) was taken as a rotation: a gap
// reported for nothing lost, and the window unknown for good, so that the container was asked
// for on every run and never confirmed. A read that ends inside the stored lines is read again;
// only two that end at the same byte show a log that is shorter now.
func TestFinishedCutInsideWindow(t *testing.T) {
	line := len("2006-01-02T15:04:05.000000000Z ") + len("a-1\n")
	tests := []struct {
		name string
		// cuts are the byte counts the confirming run's responses keep, in order (-1: whole).
		cuts      []int
		wantGap   bool
		wantError bool
		// wantSkip: the run after the confirming one asks for nothing.
		wantSkip bool
	}{
		{name: "cut once, after a line", cuts: []int{line}, wantSkip: true},
		{name: "cut once, inside the first line", cuts: []int{7}, wantSkip: true},
		{name: "cut before the first byte", cuts: []int{0}, wantSkip: true},
		{name: "cut twice, each at another place", cuts: []int{line, 2*line + 3}, wantSkip: true},
		// Taken as a rotation (a gap); the looks after it serve only lines taken as stored, and
		// two that serve the same bytes confirm the end (see TestFinishedStaleAfterRotationConfirmed).
		{name: "cut at the same byte twice: the log is shorter now", cuts: []int{line, line}, wantGap: true, wantSkip: true},
		{name: "cut at every look, each at another place", cuts: []int{1, 2, 3}, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, clock := clockedServer(t)
			srv.Append("default", "p0", "c",
				logserver.Entry{Time: clock.Add(0), Text: "a-1"},
				logserver.Entry{Time: clock.Add(5 * time.Millisecond), Text: "b-2", Stream: "stderr"},
				logserver.Entry{Time: clock.Add(3 * time.Millisecond), Text: "c-3"})
			*clock = clock.Add(2 * time.Second)
			srv.Terminate("default", "p0", "c", 0)
			dir := firstShortRun(t, srv, 3)
			res, _ := exportShort(t, srv, dir, Options{}, func(n int) int {
				if n <= len(tt.cuts) {
					return tt.cuts[n-1]
				}
				return -1
			})
			if got := res.Err != nil; got != tt.wantError {
				t.Fatalf("confirming run: error %v, want one: %v", res.Err, tt.wantError)
			}
			if got := len(res.Gaps) > 0; got != tt.wantGap || len(storedGaps(t, dir)) > 0 != tt.wantGap {
				t.Fatalf("confirming run: gaps %v (recorded %v), want a gap: %v", res.Gaps, storedGaps(t, dir), tt.wantGap)
			}
			if cp := storedCheckpointOf(t, dir); cp == nil || cp.Complete == "" {
				// Nothing was learnt against the first run's end.
				t.Fatalf("checkpoint %+v: no longer stored to its end", cp)
			}
			if !tt.wantError && !tt.wantGap {
				if cp := storedCheckpointOf(t, dir); !cp.Confirmed || cp.After {
					t.Fatalf("checkpoint %+v: want the end confirmed", cp)
				}
			}
			_, requests := exportShort(t, srv, dir, Options{}, func(int) int { return -1 })
			if got := requests == 0; got != tt.wantSkip {
				t.Fatalf("the run after: %d requests, want none: %v", requests, tt.wantSkip)
			}
			if got, err := os.ReadFile(filepath.Join(dir, "default", "p0", "c.log")); err != nil || string(got) != "a-1\nb-2\nc-3\n" {
				t.Fatalf("file %q, %v; want each line once", got, err)
			}
		})
	}
}

// A container rotated with a line older than the newest stored one in its new file (stdout and
// stderr interleaved), then finished: the resume finds the window gone (a gap, from the start of
// the newest stored line's second, which covers that line) and from then on serves only lines
// taken as stored, so it never writes, the window is never known again, and no read matched it:
// the container was asked for on every run. Two looks of one run that serve the same bytes
// confirm its end; the run after asks for nothing.
func TestFinishedStaleAfterRotationConfirmed(t *testing.T) {
	srv, clock, second, dir := storedAB(t)
	srv.Rotate("default", "p0", "c")
	c := second.Add(300 * time.Millisecond)
	srv.Append("default", "p0", "c", logserver.Entry{Time: c, Text: "c-3", Stream: "stderr"})
	*clock = clock.Add(2 * time.Second)
	srv.Terminate("default", "p0", "c", 0)

	res, _ := exportShort(t, srv, dir, Options{}, func(int) int { return -1 })
	if res.Err != nil || len(res.Gaps) != 1 {
		t.Fatalf("run after the rotation: gaps %v, %v; want the rotation's", res.Gaps, res.Err)
	}
	if g := res.Gaps[0]; c.Before(g.From) || g.To != nil && c.After(*g.To) {
		t.Fatalf("gap %v does not cover the line it lost, at %s", g, c.Format(time.RFC3339Nano))
	}
	if cp := storedCheckpointOf(t, dir); cp == nil || cp.Complete == "" || !cp.Confirmed {
		t.Fatalf("checkpoint %+v: want the end confirmed", cp)
	}
	if _, requests := exportShort(t, srv, dir, Options{}, func(int) int { return -1 }); requests != 0 {
		t.Fatalf("the run after: %d log requests, want none", requests)
	}
}
