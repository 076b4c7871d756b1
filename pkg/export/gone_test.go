package export

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// Gone reports the tail of an older pod of the same name as lost, once the pod that replaced it
// went before its log was read, and asks the API for nothing.
func TestGone(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// exported: the container was exported before Gone; replaced: its pod was replaced after.
		exported, replaced bool
		wantGap            bool
	}{
		{name: "never exported"},
		{name: "exported, same pod", exported: true},
		{name: "exported, pod replaced since", exported: true, replaced: true, wantGap: true},
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
			if tt.replaced {
				srv.Replace("default", "p0")
			}
			tgt := breakTarget(t, srv, "p0", "c")
			srv.Delete("default", "p0")
			before := asked.Load()
			res := e.Gone(tgt)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if tt.wantGap != (len(res.Gaps) == 1) || len(res.Gaps) > 1 {
				t.Fatalf("gaps %v, want a gap: %v", res.Gaps, tt.wantGap)
			}
			if tt.wantGap && (!res.Gaps[0].From.Equal(at) || res.Gaps[0].To != nil) {
				t.Errorf("gap %v, want from the old pod's last stored line on", res.Gaps[0])
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
