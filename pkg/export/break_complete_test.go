package export

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// A follower that had not exported a container yet when its pod went calls Gone with the last
// status it saw. When that status shows the container terminated, and the checkpoint says that
// very instance is stored to its end and a second read confirmed it, nothing of it is unstored:
// a follower that had exported it a moment earlier (storedToEnd, no request) reports nothing for
// the same pod, and so must Gone. Read to its end once only, the end may be a response cut short
// (a possible gap). A restart after that status (a new instance) still leaves a gap.
func TestBreakCompleteGoneFalseGap(t *testing.T) {
	tests := []struct {
		name  string
		once  bool                                          // no second export to confirm the end
		after func(srv *logserver.Server, clock *time.Time) // after the export that marked it
		// failed: the confirming export's log request finds the pod deleted.
		failed  bool
		wantGap bool
		// wantReason is in the gap's reason.
		wantReason string
	}{
		{name: "terminated instance stored to its end", wantGap: false},
		{name: "terminated instance read to its end once", once: true, wantGap: true, wantReason: "may be lost"},
		{name: "read to its end once, then a read that found the pod gone", once: true, failed: true, wantGap: true, wantReason: "may be lost"},
		{name: "restarted since: the new instance's log is lost", after: func(srv *logserver.Server, clock *time.Time) {
			*clock = clock.Add(time.Second)
			srv.Restart("default", "p0", "c")
			srv.Append("default", "p0", "c", logserver.Entry{Time: *clock, Text: "b-1"})
		}, wantGap: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, clock := clockedServer(t)
			srv.Append("default", "p0", "c", logserver.Entry{Time: *clock, Text: "a-1"})
			*clock = clock.Add(2 * time.Second)
			srv.Terminate("default", "p0", "c", 0)
			dir := t.TempDir()
			if res := exportOnce(t, srv, dir, Options{}, nil); res.Err != nil || res.Lines != 1 {
				t.Fatalf("export: %d lines, %v", res.Lines, res.Err)
			}
			if cp := storedCheckpointOf(t, dir); cp == nil || cp.Complete == "" {
				t.Fatalf("not marked stored to its end: %+v", cp)
			}
			if !tt.once {
				if res := exportOnce(t, srv, dir, Options{}, nil); res.Err != nil || res.Lines != 0 {
					t.Fatalf("confirming export: %d lines, %v", res.Lines, res.Err)
				}
				if cp := storedCheckpointOf(t, dir); cp == nil || !cp.Confirmed {
					t.Fatalf("end not confirmed: %+v", cp)
				}
			}
			if tt.after != nil {
				tt.after(srv, clock)
			}
			tgt := breakTarget(t, srv, "p0", "c")
			srv.Delete("default", "p0")
			if tt.failed {
				// Listed before the deletion, requested after it.
				if res := exportTarget(t, srv, dir, Options{}, nil, context.Background(), tgt); res.Err == nil {
					t.Fatalf("an export of a deleted pod did not fail: %+v", res)
				}
			}
			e, d := breakExporter(t, srv, dir, Options{}, nil)
			res := e.Gone(tgt)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if got := len(res.Gaps) > 0; got != tt.wantGap {
				t.Fatalf("gaps %v, want a gap: %v", res.Gaps, tt.wantGap)
			}
			for _, g := range res.Gaps {
				if !strings.Contains(g.Reason, tt.wantReason) {
					t.Fatalf("gap %q, want one that says %q", g.Reason, tt.wantReason)
				}
			}
			if got := len(storedGaps(t, dir)) > 0; got != tt.wantGap {
				t.Fatalf("recorded gaps %v, want a gap: %v", storedGaps(t, dir), tt.wantGap)
			}
		})
	}
}
