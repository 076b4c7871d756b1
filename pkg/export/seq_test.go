package export

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// TestExportSeqTakesAsExported: targets that come as they are listed are taken no faster than
// they are exported (at most the exports under way ahead), each is exported once, and its index
// is its place in the sequence.
func TestExportSeqTakesAsExported(t *testing.T) {
	srv := logserver.New(t)
	const pods, limit = 40, 2
	at := time.Now().Add(-time.Hour).UTC()
	for i := range pods {
		name := fmt.Sprintf("p%02d", i)
		srv.AddPod("default", name, "c")
		srv.Append("default", name, "c", logserver.Entry{Time: at, Text: name + " line"})
	}
	dir := t.TempDir()
	e, d := ruleExporter(t, srv, dir, Options{}, nil)
	var taken, finished atomic.Int64
	most := int64(0)
	got := make([]string, pods)
	e.ExportSeq(context.Background(), func(yield func(target.Target) bool) {
		for i := range pods {
			most = max(most, taken.Add(1)-finished.Load())
			if !yield(breakTarget(t, srv, fmt.Sprintf("p%02d", i), "c")) {
				return
			}
		}
	}, limit, func(i int, r Result) {
		finished.Add(1)
		if r.Err != nil || r.Lines != 1 || got[i] != "" {
			t.Errorf("target %d: %s, %d lines, %v (seen as %q)", i, r.Pod, r.Lines, r.Err, got[i])
		}
		got[i] = r.Pod
	})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for i, p := range got {
		if want := fmt.Sprintf("p%02d", i); p != want {
			t.Errorf("index %d: %q, want %q", i, p, want)
		}
		if log := readLog(t, dir, p, "c"); log != p+" line\n" {
			t.Errorf("%s: stored %q", p, log)
		}
	}
	// At most commitsPerStream*limit exports are under way, and one more taken and waiting to start.
	if most > commitsPerStream*limit+1 {
		t.Errorf("%d targets taken and not exported at once, want at most %d", most, commitsPerStream*limit+1)
	}
}
