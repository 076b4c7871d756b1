package export

// What the break tests' scenarios share: a server with p0/c, the first run a scenario starts from,
// and cut log responses.

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// p0Server is a fake cluster with pod p0 (container c), closed when the test ends.
func p0Server(t *testing.T) *logserver.Server {
	t.Helper()
	srv := logserver.New(t)
	srv.AddPod("default", "p0", "c")
	return srv
}

// firstShortRun is a clocked scenario's first run (exportShortAt, nothing cut) into a new
// directory; it must store lines lines.
func firstShortRun(t *testing.T, srv *logserver.Server, lines int64) string {
	t.Helper()
	dir := t.TempDir()
	if res, _ := exportShortAt(t, srv, dir, Options{}, nil, nil); res.Err != nil || res.Lines != lines {
		t.Fatalf("first run: %d lines, %v", res.Lines, res.Err)
	}
	return dir
}

// cutLooks keeps cuts[n] bytes of the n-th log response (from 1) and all of the others, as
// exportShort's keep.
func cutLooks(cuts map[int]int) func(n int) int {
	return func(n int) int {
		if c, ok := cuts[n]; ok {
			return c
		}
		return -1
	}
}

// exportDeletingPod exports tgt into dir once; the pod is deleted when the export first asks for
// its status (to prove which instance served a stream).
func exportDeletingPod(t *testing.T, srv *logserver.Server, dir string, tgt target.Target) Result {
	t.Helper()
	var once sync.Once
	e, d := breakExporter(t, srv, dir, Options{}, func(r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/pods/p0") {
			once.Do(func() { srv.Delete("default", "p0") })
		}
	})
	res := e.Export(context.Background(), tgt)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return res
}

// storedAB is a clocked server whose p0/c logged a-1 and b-2 in the clock's second x, both stored
// into dir by a first run; the clock is then 600ms into x.
func storedAB(t *testing.T) (srv *logserver.Server, clock *time.Time, x time.Time, dir string) {
	t.Helper()
	srv, clock = clockedServer(t)
	x = clock.Truncate(time.Second)
	srv.Append("default", "p0", "c",
		logserver.Entry{Time: x.Add(100 * time.Millisecond), Text: "a-1"},
		logserver.Entry{Time: x.Add(500 * time.Millisecond), Text: "b-2"})
	*clock = x.Add(600 * time.Millisecond)
	return srv, clock, x, firstShortRun(t, srv, 2)
}
