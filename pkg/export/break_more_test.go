package export

// More adversarial tests from the review (see break_test.go): each failed before its fix.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// A pod is replaced under the same name (a StatefulSet) between the run's list and its log
// request, on a node whose clock is a few seconds behind the API server's. serves proves the
// stream came from the listed pod because its first line is older than the new pod's
// creationTimestamp, but the two timestamps come from different clocks (the node's runtime and
// the API server): the new pod's lines are stored under the old pod's checkpoint. The next run
// sees the old pod's instance gone, reports a gap and exports the new pod again from its start:
// its lines are stored twice.
func TestBreakReplacedBetweenListAndFetchNodeClockBehind(t *testing.T) {
	srv := logserver.New(t)
	defer srv.Close()
	srv.AddPod("default", "p0", "c")
	base := time.Now().Add(-20 * time.Second)
	srv.Append("default", "p0", "c", logserver.Entry{Time: base, Text: "a-1"})
	tgt := breakTarget(t, srv, "p0", "c")
	var once sync.Once
	srv.OnLogRequest(func(ns, pod string, opts *corev1.PodLogOptions) {
		once.Do(func() {
			// The node's clock (its runtime's log timestamps and container start times) is 3 s
			// behind the API server's.
			srv.NodeClock = func() time.Time { return time.Now().Add(-3 * time.Second) }
			srv.Replace("default", "p0")
			skewed := srv.NodeClock()
			srv.Append("default", "p0", "c", logserver.Entry{Time: skewed, Text: "x-1"})
		})
	})
	dir := t.TempDir()
	var gaps []Gap
	for i := range 2 {
		if i == 1 {
			tgt = breakTarget(t, srv, "p0", "c")
		}
		e, d := breakExporter(t, srv, dir, Options{}, nil)
		res := e.Export(context.Background(), tgt)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		gaps = append(gaps, res.Gaps...)
		t.Logf("run %d: err=%v gaps=%v file %q", i+1, res.Err, res.Gaps, readLog(t, dir, "p0", "c"))
	}
	got := readLog(t, dir, "p0", "c")
	if strings.Count(got, "x-1\n") != 1 {
		t.Errorf("x-1 (served once by the new pod) is stored %d times; file %q", strings.Count(got, "x-1\n"), got)
	}
	if !strings.Contains(got, "a-1\n") && len(gaps) == 0 {
		t.Errorf("a-1 neither stored nor reported as a gap")
	}
}

// The container restarts twice after the run listed it (A running) and before its log request
// (A -> B -> C). The first export is refused nothing and stores B and C, but A's lines, which the
// API served when the run listed the pod, are lost without a gap: the run knows the instance it
// listed is neither the current nor the previous one any more.
func TestBreakTwoRestartsBetweenListAndFetchFirstExport(t *testing.T) {
	srv := logserver.New(t)
	defer srv.Close()
	srv.AddPod("default", "p0", "c")
	at := time.Now().Add(-10 * time.Second)
	srv.Append("default", "p0", "c", logserver.Entry{Time: at, Text: "a-1"})
	tgt := breakTarget(t, srv, "p0", "c")
	var once sync.Once
	srv.OnLogRequest(func(ns, pod string, opts *corev1.PodLogOptions) {
		once.Do(func() {
			srv.Restart("default", "p0", "c")
			srv.Append("default", "p0", "c", logserver.Entry{Time: time.Now(), Text: "b-1"})
			srv.Restart("default", "p0", "c")
			srv.Append("default", "p0", "c", logserver.Entry{Time: time.Now(), Text: "c-1"})
		})
	})
	dir := t.TempDir()
	e, d := breakExporter(t, srv, dir, Options{}, nil)
	res := e.Export(context.Background(), tgt)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	got := readLog(t, dir, "p0", "c")
	t.Logf("err=%v gaps=%v file %q", res.Err, res.Gaps, got)
	if strings.Contains(got, "a-1\n") {
		return
	}
	for _, g := range res.Gaps {
		if !at.Before(g.From) && (g.To == nil || !at.After(*g.To)) {
			return
		}
	}
	t.Errorf("a-1 (served when the run listed the pod) is neither stored nor inside a reported gap; file %q", got)
}
