package export

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// From the review of d892ecf: a finished container's confirming read, cut inside the stored
// window, is taken as a rotation (a possible gap) and leaves the window unknown (after). Later
// reads served the stored lines and nothing more, wrote nothing, and so never set the window
// again: the container was asked for on every run, never confirmed. Now such a read sets the
// window again, the next one confirms, and the one after asks for nothing.
func TestFinishedAfterCutWindowConfirmed(t *testing.T) {
	for _, keep := range []int{0, 10} {
		srv, clock := clockedServer(t)
		for i, s := range []string{"a-1", "a-2"} {
			srv.Append("default", "p0", "c", logserver.Entry{Time: clock.Add(time.Duration(i) * time.Millisecond), Text: s})
		}
		*clock = clock.Add(2 * time.Second)
		srv.Terminate("default", "p0", "c", 0)
		dir := t.TempDir()
		var last int
		for run := 1; run <= 6; run++ {
			res, requests := exportShort(t, srv, dir, Options{}, func(n int) int {
				if run == 2 && n == 1 {
					return keep
				}
				return -1
			})
			if res.Err != nil {
				t.Fatalf("keep %d run %d: %v", keep, run, res.Err)
			}
			cp := storedCheckpointOf(t, dir)
			t.Logf("keep %d run %d: %d requests, %d lines; after %v skip %d confirmed %v", keep, run, requests, res.Lines, cp.After, cp.Skip, cp.Confirmed)
			last = requests
		}
		if last != 0 {
			t.Errorf("keep %d: run 6 made %d log requests for a finished container stored to its end", keep, last)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "default", "p0", "c.log")); err != nil || string(got) != "a-1\na-2\n" {
			t.Errorf("keep %d: file %q, %v", keep, got, err)
		}
	}
}
