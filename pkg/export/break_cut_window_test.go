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
