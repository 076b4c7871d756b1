package follow

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// recorder is a Metrics that keeps what it is told, by namespace.
type recorder struct {
	mu         sync.Mutex
	reconnects map[string]int
	gaps       map[string]int
}

func (r *recorder) Reconnect(ns string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reconnects[ns]++
}

func (r *recorder) Gaps(ns string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gaps[ns] += n
}

func (r *recorder) get(m map[string]int, ns string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return m[ns]
}

// A broken stream is counted as a reconnect each time it is opened again, and gaps by their
// container's namespace; a stream the follower ends itself (the end of the run) is not a
// reconnect.
func TestMetricsEvents(t *testing.T) {
	rec := &recorder{reconnects: map[string]int{}, gaps: map[string]int{}}
	p := newPod("ns", "p", running("app", "c1"))
	var calls int
	h := start(t, []runtime.Object{p}, func(h *harness) { h.f.Metrics = rec }, withExport(func(ctx context.Context, tg target.Target, follow bool) export.Result {
		calls++
		switch calls {
		case 1, 2:
			return export.Result{Target: tg, Err: errors.New("connection reset")}
		case 3:
			r := stream(ctx, tg)
			r.Gaps = []export.Gap{{Reason: "rotated"}, {Reason: "rotated again"}}
			return r
		}
		return stream(ctx, tg)
	}))
	h.next()
	h.step(time.Second, 1, 0) // the first backoff
	h.next()
	h.step(2*time.Second, 1, 0) // the second, doubled
	h.next()
	h.waitFor("the third stream to open", func() bool { return h.f.Stats().Open == 1 })
	if got := rec.get(rec.reconnects, "ns"); got != 2 {
		t.Fatalf("reconnects %d, want 2", got)
	}
	res := h.stop()
	if got := rec.get(rec.reconnects, "ns"); got != 2 {
		t.Fatalf("reconnects after the end %d, want still 2", got)
	}
	if got, want := rec.get(rec.gaps, "ns"), len(res["ns/p/app"].Gaps); got != 2 || want != 2 {
		t.Fatalf("gaps counted %d, reported %d; want 2 and 2", got, want)
	}
}

// Synced is called once, after the informer delivered the pods that existed at the start, with
// their selected containers in order.
func TestSyncedListsTheFirstContainers(t *testing.T) {
	synced := make(chan []target.Target, 2)
	objs := []runtime.Object{
		newPod("ns", "b", running("app", "b1")),
		newPod("ns", "a", running("web", "a1"), running("app", "a2")),
	}
	h := start(t, objs, func(h *harness) { h.f.Synced = func(ts []target.Target) { synced <- ts } })
	var got []string
	select {
	case ts := <-synced:
		for _, tg := range ts {
			got = append(got, tg.Key())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Synced not called within 10s")
	}
	want := []string{"ns/a/app", "ns/a/web", "ns/b/app"}
	if len(got) != len(want) {
		t.Fatalf("Synced with %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Synced with %v, want %v", got, want)
		}
	}
	h.stop()
	if len(synced) != 0 {
		t.Fatal("Synced called more than once")
	}
}
