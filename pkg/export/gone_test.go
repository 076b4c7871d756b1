package export

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// Gone reports what a pod that went before its log was read leaves unstored (after the
// checkpoint, its own or an older pod's of the same name, or all of it), and asks for nothing.
func TestGone(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// exported: the container was exported before Gone; replaced: its pod was replaced after;
		// notStarted: the target's status says it never started; removed: the exported log was
		// removed by hand, and a run that found it so stopped before its export saved anything.
		exported, replaced, notStarted, removed bool
		wantGap                                 bool
		// wantFrom: the gap starts at the stored line; otherwise its start is unknown.
		wantFrom bool
		// wantReason is in the gap's reason.
		wantReason string
	}{
		{name: "never exported", wantGap: true, wantReason: "its log is lost"},
		{name: "never started", notStarted: true},
		{name: "exported, same pod", exported: true, wantGap: true, wantFrom: true, wantReason: "after the checkpoint is lost"},
		{name: "exported, pod replaced since", exported: true, replaced: true, wantGap: true, wantFrom: true, wantReason: "was replaced"},
		// The empty checkpoint the run saved says nothing is stored: the whole log is lost, not
		// what came after a checkpoint.
		{name: "exported, log removed, export again never saved", exported: true, removed: true, wantGap: true, wantReason: "its log is lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := logserver.New(t)
			srv.AddPod("default", "p0", "c")
			srv.Append("default", "p0", "c", logserver.Entry{Time: at, Text: "old-1"})
			dir := t.TempDir()
			var asked atomic.Int64
			e, d := breakExporter(t, srv, dir, Options{}, func(*http.Request) { asked.Add(1) })
			defer d.Close()
			if tt.exported {
				if res := e.Export(context.Background(), breakTarget(t, srv, "p0", "c")); res.Err != nil || res.Lines != 1 {
					t.Fatalf("export: %d lines, %v", res.Lines, res.Err)
				}
			}
			if tt.removed {
				if err := os.Remove(filepath.Join(dir, "default", "p0", "c.log")); err != nil {
					t.Fatal(err)
				}
				l, err := d.OpenLog("default", "p0", "c")
				if err != nil || !l.Reset {
					t.Fatalf("opening the removed log: %v, %v; want a reset", l, err)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if tt.replaced {
				srv.Replace("default", "p0")
			}
			tgt := breakTarget(t, srv, "p0", "c")
			if tt.notStarted {
				tgt.Status = nil
			}
			srv.Delete("default", "p0")
			before := asked.Load()
			res := e.Gone(tgt)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if tt.wantGap != (len(res.Gaps) == 1) || len(res.Gaps) > 1 {
				t.Fatalf("gaps %v, want a gap: %v", res.Gaps, tt.wantGap)
			}
			if tt.wantGap && (res.Gaps[0].From.Equal(at) != tt.wantFrom || !tt.wantFrom && !res.Gaps[0].From.IsZero() || res.Gaps[0].To != nil) {
				t.Errorf("gap %v, want it open-ended, from the last stored line: %v", res.Gaps[0], tt.wantFrom)
			}
			if tt.wantGap && !strings.Contains(res.Gaps[0].Reason, tt.wantReason) {
				t.Errorf("gap %v, want its reason to say %q", res.Gaps[0], tt.wantReason)
			}
			if n := asked.Load() - before; n != 0 {
				t.Errorf("Gone made %d requests, want none", n)
			}
			if _, err := os.Stat(filepath.Join(dir, "default", "p0")); tt.exported == os.IsNotExist(err) {
				t.Errorf("pod directory: %v; want it only if exported before", err)
			}
		})
	}
}
