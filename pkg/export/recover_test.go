package export

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// A --timestamps file whose checkpoints are gone (moved aside, say) is continued once the API
// proves which instance its last lines came from. The run that tries the current instance first
// is stopped before the stream said anything: the guess must not be saved as the checkpoint.
// Had it been, the next run would resume in the current instance, find the stored lines not
// served there, take it for a rotation and never read the previous instance's tail.
func TestRecoverCutBeforeProofSavesNothing(t *testing.T) {
	srv := logserver.New(t)
	defer srv.Close()
	srv.AddPod("default", "p0", "c")
	base := time.Now().Add(-time.Minute)
	for i, text := range []string{"a-1", "a-2", "a-3"} {
		srv.Append("default", "p0", "c", logserver.Entry{Time: base.Add(time.Duration(i) * time.Second), Text: text})
	}
	dir := t.TempDir()
	opts := Options{Timestamps: true}
	e, d := breakExporter(t, srv, dir, opts, nil)
	if res := e.Export(context.Background(), breakTarget(t, srv, "p0", "c")); res.Err != nil || res.Lines != 3 {
		t.Fatalf("first export: %d lines, err %v", res.Lines, res.Err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, ".logexport", "checkpoints")); err != nil {
		t.Fatal(err)
	}
	// A logs on and restarts: its tail a-4 is served only as the previous instance's.
	srv.Append("default", "p0", "c", logserver.Entry{Time: base.Add(10 * time.Second), Text: "a-4"})
	srv.Restart("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: base.Add(20 * time.Second), Text: "b-1"})

	ctx, cancel := context.WithCancel(context.Background())
	srv.OnLogRequest(func(_, _ string, o *corev1.PodLogOptions) {
		if !o.Previous {
			cancel()
		}
	})
	e, d = breakExporter(t, srv, dir, opts, nil)
	res := e.Export(ctx, breakTarget(t, srv, "p0", "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if res.Err == nil {
		t.Fatalf("the stopped run reports no error")
	}
	srv.OnLogRequest(nil)

	e, d = breakExporter(t, srv, dir, opts, nil)
	res = e.Export(context.Background(), breakTarget(t, srv, "p0", "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, l := range strings.Split(strings.TrimSuffix(readLog(t, dir, "p0", "c"), "\n"), "\n") {
		if _, text, ok := strings.Cut(l, " "); ok {
			texts = append(texts, text)
		}
	}
	if got, want := strings.Join(texts, " "), "a-1 a-2 a-3 a-4 b-1"; got != want || res.Err != nil || len(res.Gaps) != 0 {
		t.Errorf("after the stopped run and the next: file %q, gaps %v, err %v; want %q, no gap", got, res.Gaps, res.Err, want)
	}
}

// The stored lines are not served as they were (a rotation), but the newest of them still is,
// in the new file (a follower's stream read on across the rotation). The run that finds this
// restarts the window and asks again for lines newer than the newest stored one, and is stopped
// before that stream said anything: saving the restarted, still empty window would tell the next
// run that nothing served from the window's second on is stored, and it would store n-1 again.
func TestRotatedCutBeforeWindowSavesNothing(t *testing.T) {
	srv := logserver.New(t)
	defer srv.Close()
	srv.AddPod("default", "p0", "c")
	sec := time.Now().Add(-time.Minute).Truncate(time.Second)
	x := logserver.Entry{Time: sec.Add(100 * time.Millisecond), Text: "x"}
	n1 := logserver.Entry{Time: sec.Add(300 * time.Millisecond), Text: "n-1"}
	srv.Append("default", "p0", "c", x, n1)
	dir := t.TempDir()
	e, d := breakExporter(t, srv, dir, Options{}, nil)
	if res := e.Export(context.Background(), breakTarget(t, srv, "p0", "c")); res.Err != nil || res.Lines != 2 {
		t.Fatalf("first export: %d lines, err %v", res.Lines, res.Err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Rotate("default", "p0", "c")
	srv.Append("default", "p0", "c", n1)

	ctx, cancel := context.WithCancel(context.Background())
	requests := 0
	srv.OnLogRequest(func(string, string, *corev1.PodLogOptions) {
		// The first request finds the window not served; the second asks for what is newer.
		if requests++; requests == 2 {
			cancel()
			// The response is empty: served at once, it could reach the client before the
			// cancel does, and the run would end normally (1 run in 20).
			time.Sleep(100 * time.Millisecond)
		}
	})
	e, d = breakExporter(t, srv, dir, Options{}, nil)
	res := e.Export(ctx, breakTarget(t, srv, "p0", "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if requests < 2 || res.Err == nil {
		t.Fatalf("the run was not stopped at its second log request (%d requests, err %v)", requests, res.Err)
	}
	srv.OnLogRequest(nil)

	e, d = breakExporter(t, srv, dir, Options{}, nil)
	res = e.Export(context.Background(), breakTarget(t, srv, "p0", "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, dir, "p0", "c"); got != "x\nn-1\n" || res.Err != nil {
		t.Errorf("after the stopped run and the next: file %q, err %v; want %q", got, res.Err, "x\nn-1\n")
	}
}
