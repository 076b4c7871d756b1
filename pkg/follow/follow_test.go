package follow

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// call is one export the follower asked for.
type call struct {
	ctx    context.Context
	t      target.Target
	follow bool
}

// harness runs a Follower against a fake clientset, a fake clock and a fake export.
type harness struct {
	t      *testing.T
	client *fake.Clientset
	clock  *testingclock.FakeClock
	f      *Follower
	calls  chan call
	cancel context.CancelFunc
	done   chan struct{}
	// watchesWanted is how many pod watches start waits for.
	watchesWanted int

	results []export.Result
	nsErrs  []podselect.NamespaceError
	err     error
}

// stream is what a followed running container does in the fake: the stream stays open until the
// follower ends it.
func stream(ctx context.Context, t target.Target) export.Result {
	<-ctx.Done()
	return export.Result{Target: t, Err: fmt.Errorf("reading log of %s: %w", t.Key(), ctx.Err())}
}

// kubeletLike exports as a kubelet serves: a running container's stream stays open, any other
// read returns at once, with one line.
func kubeletLike(ctx context.Context, t target.Target, follow bool) export.Result {
	if follow && isRunning(t) {
		return stream(ctx, t)
	}
	return export.Result{Target: t, Lines: 1, Bytes: 2, Complete: !isRunning(t)}
}

func isRunning(t target.Target) bool {
	return t.Status != nil && t.Status.State.Running != nil
}

type option func(*harness)

func withExport(fn ExportFunc) option { return func(h *harness) { h.f.Export = fn } }
func withStreams(n int) option        { return func(h *harness) { h.f.MaxStreams = n } }
func allNamespaces(h *harness)        { h.f.Scope = podselect.Scope{AllNamespaces: true} }

func start(t *testing.T, objs []runtime.Object, opts ...option) *harness {
	t.Helper()
	h := &harness{t: t, client: fake.NewClientset(objs...), clock: testingclock.NewFakeClock(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)),
		calls: make(chan call, 100), done: make(chan struct{}), watchesWanted: 1}
	exp := ExportFunc(kubeletLike)
	h.f = &Follower{
		Client: h.client, Scope: podselect.Scope{Namespace: "ns"}, MaxStreams: 10, Clock: h.clock,
		// No jitter: the tests step the clock by exact delays.
		Backoff:      wait.Backoff{Duration: time.Second, Factor: 2, Steps: 1 << 30, Cap: 10 * time.Second},
		EndedBackoff: wait.Backoff{Duration: 2 * time.Second, Factor: 2, Steps: 1 << 30, Cap: time.Minute},
	}
	for _, o := range opts {
		o(h)
	}
	if h.f.Export != nil {
		exp = h.f.Export
	}
	h.f.Export = func(ctx context.Context, t target.Target, follow bool) export.Result {
		h.calls <- call{ctx: ctx, t: t, follow: follow}
		return exp(ctx, t, follow)
	}
	// The fake clientset drops what happens before a watch starts: wait for the informers' watches
	// (one per namespace followed) before the test changes anything.
	watches := make(chan struct{}, 100)
	h.client.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		var opts metav1.ListOptions
		if w, ok := a.(k8stesting.WatchActionImpl); ok {
			opts = w.ListOptions
		}
		w, err := h.client.Tracker().Watch(a.GetResource(), a.GetNamespace(), opts)
		watches <- struct{}{}
		return true, w, err
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		h.results, h.nsErrs, h.err = h.f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
	for range h.watchesWanted {
		select {
		case <-watches:
		case <-time.After(10 * time.Second):
			t.Fatal("the informers did not watch within 10s")
		}
	}
	return h
}

// next returns the next export the follower asks for.
func (h *harness) next() call {
	h.t.Helper()
	select {
	case c := <-h.calls:
		return c
	case <-h.done:
		h.t.Fatalf("the follower ended: %v", h.err)
	case <-time.After(10 * time.Second):
		h.t.Fatal("no export within 10s")
	}
	return call{}
}

// none checks that no export is asked for within a moment.
func (h *harness) none() {
	h.t.Helper()
	select {
	case c := <-h.calls:
		h.t.Fatalf("unexpected export of %s (follow %v, status %s)", c.t.Key(), c.follow, instanceOf(c.t.Status))
	case <-time.After(200 * time.Millisecond):
	}
}

// waitFor polls until cond holds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// step advances the fake clock once exactly n timers wait on it and open streams are open.
func (h *harness) step(d time.Duration, n, open int) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%d timers and %d streams", n, open), func() bool {
		return h.clock.Waiters() == n && h.f.Stats().Open == open
	})
	h.clock.Step(d)
}

// waitGone waits until the follower has seen that a container's pod is gone.
func (h *harness) waitGone(key string) {
	h.t.Helper()
	h.waitFor(key+" to go", func() bool {
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		c, ok := h.f.containers[key]
		if !ok {
			return true
		}
		select {
		case <-c.gone:
			return true
		default:
			return false
		}
	})
}

// stop ends the run and returns its results by container key.
func (h *harness) stop() map[string]export.Result {
	h.t.Helper()
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return 10s after its context ended")
	}
	if h.err != nil {
		h.t.Fatalf("Run: %v", h.err)
	}
	out := map[string]export.Result{}
	for _, r := range h.results {
		out[r.Key()] = r
	}
	return out
}

func (h *harness) update(p *corev1.Pod) {
	h.t.Helper()
	if _, err := h.client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) create(p *corev1.Pod) {
	h.t.Helper()
	if _, err := h.client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// pod returns the pod in namespace ns as the API has it now, or nil.
func (h *harness) pod(name string) *corev1.Pod {
	h.t.Helper()
	p, err := h.client.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) delete(p *corev1.Pod) {
	h.t.Helper()
	if err := h.client.CoreV1().Pods(p.Namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func running(name, id string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, ContainerID: id,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}
}

func terminated(name, id string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, ContainerID: id,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: id, ExitCode: 0}}}
}

func crashLooping(name, id string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, ContainerID: id, RestartCount: 3,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: id, ExitCode: 1}}}
}

// restarted is a container's status after a restart: the new instance runs, the old one is the
// last terminated.
func restarted(old corev1.ContainerStatus, id string) corev1.ContainerStatus {
	s := running(old.Name, id)
	s.RestartCount = old.RestartCount + 1
	s.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: old.ContainerID}}
	return s
}

// newPod is a pod in namespace ns with the given containers; init containers are named init*.
func newPod(ns, name string, statuses ...corev1.ContainerStatus) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name)}}
	for _, s := range statuses {
		if len(s.Name) >= 4 && s.Name[:4] == "init" {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: s.Name})
			p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, s)
		} else {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: s.Name})
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, s)
		}
	}
	return p
}

func notFound(t target.Target) error {
	return fmt.Errorf("reading log of %s: %w", t.Key(), apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, t.Pod))
}

func TestNewPodIsPickedUp(t *testing.T) {
	h := start(t, nil)
	h.waitFor("the informer", func() bool { return h.f.Stats() == Stats{} })
	if _, err := h.client.CoreV1().Pods("ns").Create(context.Background(), newPod("ns", "p", running("app", "c1")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := h.next()
	if c.t.Key() != "ns/p/app" || !c.follow || instanceOf(c.t.Status) != "c1 running" {
		t.Fatalf("export of %s (follow %v, %s), want ns/p/app following c1", c.t.Key(), c.follow, instanceOf(c.t.Status))
	}
	h.waitFor("an open stream", func() bool { return h.f.Stats().Open == 1 })
	res := h.stop()
	if r := res["ns/p/app"]; r.Err != nil {
		t.Fatalf("a stream ended by the end of the run is no failure: %v", r.Err)
	}
}

// A restart ends the old instance's stream; the next export is given the new status, whose last
// terminated instance the merge reads (its tail) before the new one.
func TestRestartInterruptsTheStream(t *testing.T) {
	p := newPod("ns", "p", running("app", "c1"))
	h := start(t, []runtime.Object{p})
	first := h.next()
	p.Status.ContainerStatuses[0] = restarted(p.Status.ContainerStatuses[0], "c2")
	h.update(p)
	second := h.next()
	if cause := context.Cause(first.ctx); !errors.Is(cause, errNewStatus) {
		t.Fatalf("the old stream ended with %v, want %v", cause, errNewStatus)
	}
	st := second.t.Status
	if !second.follow || instanceOf(st) != "c2 running" || st.LastTerminationState.Terminated == nil ||
		st.LastTerminationState.Terminated.ContainerID != "c1" {
		t.Fatalf("after the restart: follow %v, status %+v; want c2 running after c1", second.follow, st)
	}
	h.none()
	if r := h.stop()["ns/p/app"]; r.Err != nil {
		t.Fatalf("result %+v", r)
	}
}

// A deleted pod: its stream drains, and nothing is requested after it (the API answers 404, or
// a new pod of the same name answers); no failure, and a gap only if the stream had broken.
func TestDeletedPod(t *testing.T) {
	for _, tc := range []struct {
		name string
		// broken: the stream had failed when the pod went, so lines may be lost
		broken bool
		// notFound: the stream met the deletion before the informer did
		notFound bool
	}{
		{name: "streaming"},
		{name: "stream broken", broken: true},
		{name: "404 before the informer saw the deletion", notFound: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPod("ns", "b-0", running("app", "c1"))
			h := start(t, []runtime.Object{p}, withExport(func(ctx context.Context, tg target.Target, follow bool) export.Result {
				switch {
				case tc.broken:
					return export.Result{Target: tg, Err: errors.New("connection reset")}
				case tc.notFound:
					return export.Result{Target: tg, Err: notFound(tg)}
				}
				r := stream(ctx, tg)
				r.Lines = 5
				return r
			}))
			h.next()
			h.delete(p)
			h.waitGone("ns/b-0/app")
			if !tc.broken && !tc.notFound {
				// The share and the drain timers: the stream may still deliver for a while.
				h.step(DefaultDrainAfter, 2, 1)
			}
			h.waitFor("the container to end", func() bool { return h.f.Stats().Containers == 0 })
			h.none()
			r := h.stop()["ns/b-0/app"]
			if !tc.broken && r.Err != nil {
				t.Fatalf("a deleted pod's container failed: %v", r.Err)
			}
			if tc.broken != (len(r.Gaps) == 1) {
				t.Fatalf("gaps %v; want one only when the stream had broken", r.Gaps)
			}
			if !tc.broken && !tc.notFound && r.Lines != 5 {
				t.Fatalf("lines %d, want the stream's 5", r.Lines)
			}
		})
	}
}

// A pod that no longer matches the selectors but still exists gets a last read without follow.
func TestUnselectedPodIsReadOnceMore(t *testing.T) {
	p := newPod("ns", "p", running("app", "c1"))
	h := start(t, []runtime.Object{p})
	h.next()
	h.f.remove(0, p)
	h.step(DefaultDrainAfter, 2, 1)
	if c := h.next(); c.follow {
		t.Fatal("the last read follows")
	}
	h.waitFor("the container to end", func() bool { return h.f.Stats().Containers == 0 })
	if r := h.stop()["ns/p/app"]; r.Err != nil || r.Lines != 1 {
		t.Fatalf("result %+v", r)
	}
}

// A container that is not running and whose log was read to its end is not asked for again
// until its status changes, and does not keep a running container from its stream.
func TestStoppedContainerIsNotRequestedAgain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		stopped string
		// restart is the stopped container's next status.
		restart corev1.ContainerStatus
	}{
		{name: "init container", pod: newPod("ns", "p", terminated("init", "i1"), running("app", "a1")), stopped: "ns/p/init",
			restart: restarted(terminated("init", "i1"), "i2")},
		{name: "finished job", pod: newPod("ns", "job", terminated("app", "j1")), stopped: "ns/job/app",
			restart: restarted(terminated("app", "j1"), "j2")},
		{name: "crash loop", pod: newPod("ns", "p", crashLooping("app", "x1"), running("side", "s1")), stopped: "ns/p/app",
			restart: restarted(crashLooping("app", "x1"), "x2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, []runtime.Object{tc.pod}, withStreams(1))
			var runningKey string
			for _, s := range append(tc.pod.Status.InitContainerStatuses, tc.pod.Status.ContainerStatuses...) {
				if s.State.Running != nil {
					runningKey = "ns/" + tc.pod.Name + "/" + s.Name
				}
			}
			// The stopped container waits for its turn behind a running one's stream, or not.
			seen := map[string]int{}
			deadline := time.After(10 * time.Second)
			for seen[tc.stopped] == 0 {
				select {
				case c := <-h.calls:
					seen[c.t.Key()]++
				case <-time.After(50 * time.Millisecond):
					if st := h.f.Stats(); st.Waiting == 1 && st.Open == 1 && h.clock.Waiters() == 1 {
						h.clock.Step(DefaultShareAfter)
					}
				case <-deadline:
					t.Fatalf("exports %v", seen)
				}
			}
			n := min(len(runningKey), 1)
			h.waitFor("the stopped one stored and the running one streaming", func() bool {
				st := h.f.Stats()
				return st.Stored == 1 && st.Open == n && st.Waiting == 0
			})
			for len(h.calls) > 0 {
				if c := <-h.calls; c.t.Key() != runningKey {
					t.Fatalf("export of %s", c.t.Key())
				}
			}
			// Long past every backoff and share interval: nothing is asked for again, and the
			// running container keeps its stream.
			for range 10 {
				h.step(time.Hour, n, n)
			}
			h.none()
			if runningKey != "" && h.f.Stats().Open != 1 {
				t.Fatalf("stats %+v: the running container lost its stream", h.f.Stats())
			}
			// A new instance is exported.
			p := tc.pod.DeepCopy()
			for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
				for i := range list {
					if "ns/"+p.Name+"/"+list[i].Name == tc.stopped {
						list[i] = tc.restart
					}
				}
			}
			h.update(p)
			if n == 1 {
				// Its turn comes when the running one's stream is shared.
				h.waitFor("the restarted one to wait", func() bool { return h.f.Stats().Waiting == 1 })
				h.step(DefaultShareAfter, 1, 1)
			}
			if c := h.next(); c.t.Key() != tc.stopped || instanceOf(c.t.Status) != instanceOf(&tc.restart) {
				t.Fatalf("after the restart: export of %s %s", c.t.Key(), instanceOf(c.t.Status))
			}
			if r := h.stop()[tc.stopped]; r.Err != nil || r.Lines != 1 {
				t.Fatalf("stopped container's result %+v", r)
			}
		})
	}
}

// A stopped container whose export read its log up to the end as served is read once more at
// once, without waiting for a new status or a backoff (a response the API server ended early
// looks like the log's end), and no more: once that read confirms it, or, if it does not, left
// to one-shot runs rather than polled.
func TestStoppedContainerIsConfirmed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		confirm func(read int32) bool // whether the read-th export (from 1) leaves the end unconfirmed
	}{
		{"confirmed by the second read", func(read int32) bool { return read == 1 }},
		{"never confirmed", func(int32) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPod("ns", "job", terminated("app", "j1"))
			var reads atomic.Int32
			h := start(t, []runtime.Object{p}, withExport(func(ctx context.Context, tg target.Target, follow bool) export.Result {
				n := reads.Add(1)
				lines := int64(0)
				if n == 1 {
					lines = 3
				}
				c := tc.confirm(n)
				return export.Result{Target: tg, Lines: lines, Bytes: 4 * lines, Confirm: c, Complete: !c}
			}))
			for i := range 2 {
				if c := h.next(); c.t.Key() != "ns/job/app" {
					t.Fatalf("export %d: of %s", i+1, c.t.Key())
				}
			}
			h.waitFor("stored", func() bool { return h.f.Stats().Stored == 1 })
			h.step(time.Hour, 0, 0)
			h.none()
			if r := h.stop()["ns/job/app"]; r.Err != nil || r.Lines != 3 {
				t.Fatalf("result %+v, want the 3 lines of both reads", r)
			}
		})
	}
}

// A stream that ends while the status still says running is asked for again after a growing
// delay, and at once when the status says the container stopped; then no more.
func TestStreamEndedWhileRunning(t *testing.T) {
	p := newPod("ns", "p", running("app", "c1"))
	h := start(t, []runtime.Object{p}, withExport(func(ctx context.Context, tg target.Target, follow bool) export.Result {
		return export.Result{Target: tg, Complete: !isRunning(tg)} // a clean end, nothing new
	}))
	h.next()
	for _, d := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
		h.step(d-time.Millisecond, 1, 0)
		h.none()
		h.clock.Step(time.Millisecond)
		if c := h.next(); !c.follow {
			t.Fatal("not following")
		}
	}
	p.Status.ContainerStatuses[0] = terminated("app", "c1")
	h.update(p)
	if c := h.next(); instanceOf(c.t.Status) != "c1 stopped" {
		t.Fatalf("export of %s", instanceOf(c.t.Status))
	}
	h.waitFor("stored", func() bool { return h.f.Stats().Stored == 1 })
	h.step(time.Hour, 0, 0)
	h.none()
}

// With more containers than streams, a stream yields its slot after ShareAfter to the one that
// waits, which gets its turn; then the other way round.
func TestStreamsAreShared(t *testing.T) {
	h := start(t, []runtime.Object{newPod("ns", "a", running("app", "a1")), newPod("ns", "b", running("app", "b1"))}, withStreams(1))
	first := h.next()
	h.waitFor("one to wait", func() bool { return h.f.Stats().Waiting == 1 })
	h.step(DefaultShareAfter, 1, 1)
	second := h.next()
	if second.t.Key() == first.t.Key() {
		t.Fatalf("%s got the stream twice", first.t.Key())
	}
	if cause := context.Cause(first.ctx); !errors.Is(cause, errShare) {
		t.Fatalf("first stream ended with %v", cause)
	}
	h.waitFor("the first to wait", func() bool { return h.f.Stats().Waiting == 1 })
	h.step(DefaultShareAfter, 1, 1)
	if third := h.next(); third.t.Key() != first.t.Key() {
		t.Fatalf("third turn to %s, want %s", third.t.Key(), first.t.Key())
	}
	for k, r := range h.stop() {
		if r.Err != nil {
			t.Errorf("%s: %v", k, r.Err)
		}
	}
}

// Without a bound every running container gets a stream of its own at once, a new pod too, and
// no stream is ever ended to give way: with 1,000 containers and fewer streams, each would wait
// for minutes (see test/bench, workload f).
func TestUnboundedStreams(t *testing.T) {
	var objs []runtime.Object
	for _, name := range []string{"a", "b", "c"} {
		objs = append(objs, newPod("ns", name, running("app", name+"1")))
	}
	h := start(t, objs, withStreams(0))
	got := map[string]call{}
	for range 3 {
		c := h.next()
		got[c.t.Key()] = c
	}
	h.waitFor("three streams", func() bool { st := h.f.Stats(); return st.Open == 3 && st.Waiting == 0 })
	if _, err := h.client.CoreV1().Pods("ns").Create(context.Background(), newPod("ns", "d", running("app", "d1")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := h.next()
	got[c.t.Key()] = c
	if len(got) != 4 {
		t.Fatalf("streams for %d containers, want 4", len(got))
	}
	// No share timer runs (nothing to give way to); time passes and every stream stays open.
	h.step(10*DefaultShareAfter, 0, 4)
	h.none()
	for k, c := range got {
		if !c.follow || c.ctx.Err() != nil {
			t.Errorf("%s: follow %v, stream ended: %v", k, c.follow, context.Cause(c.ctx))
		}
	}
	for k, r := range h.stop() {
		if r.Err != nil {
			t.Errorf("%s: %v", k, r.Err)
		}
	}
}

// A container waiting for a stream stops waiting when its pod is deleted: it never opens a
// stream nor asks for anything, and is no failure.
func TestWaitingContainerSeesDeletion(t *testing.T) {
	a, b := newPod("ns", "a", running("app", "a1")), newPod("ns", "b", running("app", "b1"))
	h := start(t, []runtime.Object{a, b}, withStreams(1))
	first := h.next()
	waiter := b
	if first.t.Pod == "b" {
		waiter = a
	}
	h.waitFor("one to wait", func() bool { return h.f.Stats().Waiting == 1 })
	h.delete(waiter)
	h.waitFor("the waiter to leave", func() bool { st := h.f.Stats(); return st.Waiting == 0 && st.Containers == 1 })
	// The stream keeps its slot: nobody waits.
	h.step(DefaultShareAfter, 1, 1)
	h.none()
	if st := h.f.Stats(); st.Open != 1 {
		t.Fatalf("stats %+v", st)
	}
	res := h.stop()
	if r, ok := res["ns/"+waiter.Name+"/app"]; ok && r.Err != nil {
		t.Fatalf("the deleted waiter failed: %v", r.Err)
	}
}

// A pod deleted before an export read its container's log up to the end: what the file's
// checkpoint says is lost (its tail, or that of an older pod of the same name) is still reported,
// without a log request. A log read up to the end (a stream drained after the pod went, or ended
// by the server) has nothing more to report.
func TestGoneBeforeItsLogIsRead(t *testing.T) {
	// Shorter than ShareAfter: a stream cut for another's turn, even after its pod went, may not
	// have delivered all.
	const drain = time.Second
	// a is created while b streams, waits, and gets b's stream once b's share is over.
	aTakesTurn := func(h *harness) {
		h.t.Helper()
		h.create(newPod("ns", "a", running("app", "a1")))
		h.waitFor("a to wait", func() bool { return h.f.Stats().Waiting == 1 })
		h.step(DefaultShareAfter, 1, 1)
		if c := h.next(); c.t.Pod != "a" {
			h.t.Fatalf("export of %s, want a's turn", c.t.Key())
		}
	}
	for _, tc := range []struct {
		name string
		// export answers for pod a (b is kubelet-like); nil: kubelet-like too.
		export func() ExportFunc
		// before brings the follower, started with a (and b), to where a is deleted; the
		// containers left after it.
		before func(h *harness)
		left   int
		// gone: Gone is to be called for a (and its gap reported); broke: a's stream was broken
		// when its pod went, which adds that gap and the stream's error.
		gone, broke bool
		// drain is the follower's DrainAfter, if not the default of these cases.
		drain time.Duration
	}{
		{name: "waiting for its first turn", gone: true, left: 1, before: func(h *harness) {
			// b has the stream before a exists, so a waits.
			h.create(newPod("ns", "a", running("app", "a1")))
			h.waitFor("a to wait", func() bool { return h.f.Stats().Waiting == 1 })
		}},
		{name: "its first request met the deletion", gone: true, left: 0,
			// The pod deleted after the follower took its turn, before its request came: 404,
			// nothing served, and the informer not yet told.
			export: func() ExportFunc {
				return func(ctx context.Context, tg target.Target, follow bool) export.Result {
					return export.Result{Target: tg, Err: notFound(tg)}
				}
			},
			before: func(h *harness) {
				h.create(newPod("ns", "a", running("app", "a1")))
				h.next()
			}},
		{name: "waiting again after giving way", gone: true, left: 1, before: func(h *harness) {
			aTakesTurn(h)
			h.step(DefaultShareAfter, 1, 1)
			if c := h.next(); c.t.Pod != "b" {
				t.Fatalf("export of %s, want b's turn", c.t.Key())
			}
			h.waitFor("a to wait again", func() bool { return h.f.Stats().Waiting == 1 })
		}},
		{name: "its stream drained after the deletion", left: 1, before: func(h *harness) {
			aTakesTurn(h)
			h.delete(h.pod("a"))
			h.waitGone("ns/a/app")
			// a's share and drain timers: the stream delivers what a wrote before it went, and
			// ends before it would give way to b.
			h.step(drain, 2, 1)
			if c := h.next(); c.t.Pod != "b" {
				t.Fatalf("export of %s, want b's turn once a's stream ended", c.t.Key())
			}
		}},
		{name: "its stream drained after the deletion, longer than its share", left: 1, drain: 2 * DefaultShareAfter, before: func(h *harness) {
			aTakesTurn(h)
			h.delete(h.pod("a"))
			h.waitGone("ns/a/app")
			// b waits, but a's stream keeps its slot while it drains: its share ends unheeded,
			// then its drain.
			h.step(DefaultShareAfter, 2, 1)
			h.step(DefaultShareAfter, 1, 1)
			if c := h.next(); c.t.Pod != "b" {
				t.Fatalf("export of %s, want b's turn once a's stream ended", c.t.Key())
			}
		}},
		{name: "404 after a stream the server ended", left: 0,
			export: func() ExportFunc {
				n := 0
				return func(ctx context.Context, tg target.Target, follow bool) export.Result {
					if n++; n == 1 {
						return export.Result{Target: tg, Lines: 1, Bytes: 2} // ended: the container stopped
					}
					return export.Result{Target: tg, Err: notFound(tg)}
				}
			},
			before: func(h *harness) {
				h.create(newPod("ns", "a", running("app", "a1")))
				h.next()
				h.step(2*time.Second, 1, 0) // the ended stream's backoff
				h.next()
			}},
		{name: "its stream broke after one the server ended", gone: true, broke: true, left: 0,
			export: func() ExportFunc {
				n := 0
				return func(ctx context.Context, tg target.Target, follow bool) export.Result {
					if n++; n == 1 {
						return export.Result{Target: tg, Lines: 1, Bytes: 2} // ended: the container stopped
					}
					return export.Result{Target: tg, Err: errors.New("connection reset by peer")}
				}
			},
			before: func(h *harness) {
				h.create(newPod("ns", "a", running("app", "a1")))
				h.next()
				h.step(2*time.Second, 1, 0) // the ended stream's backoff
				h.next()
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			streams := 1
			if tc.export == nil {
				objs = append(objs, newPod("ns", "b", running("app", "b1")))
			}
			exportA := ExportFunc(kubeletLike)
			if tc.export != nil {
				exportA, streams = tc.export(), 10
			}
			gone := make(chan string, 10)
			h := start(t, objs, withStreams(streams), withExport(func(ctx context.Context, tg target.Target, follow bool) export.Result {
				if tg.Pod == "a" {
					return exportA(ctx, tg, follow)
				}
				return kubeletLike(ctx, tg, follow)
			}), func(h *harness) {
				h.f.DrainAfter = drain
				if tc.drain > 0 {
					h.f.DrainAfter = tc.drain
				}
				h.f.Gone = func(tg target.Target) export.Result {
					gone <- tg.Key()
					return export.Result{Target: tg, Gaps: []export.Gap{{Reason: "the tail after the checkpoint"}}}
				}
			})
			if len(objs) > 0 {
				h.next() // b's stream
			}
			tc.before(h)
			if p := h.pod("a"); p != nil {
				h.delete(p)
			}
			h.waitFor("a to leave", func() bool { return h.f.Stats().Containers == tc.left })
			h.none()
			res := h.stop()
			close(gone)
			var keys []string
			for k := range gone {
				keys = append(keys, k)
			}
			r := res["ns/a/app"]
			if tc.gone {
				if len(keys) != 1 || keys[0] != "ns/a/app" {
					t.Fatalf("Gone called for %v, want only ns/a/app", keys)
				}
				if tc.broke {
					if r.Err == nil || len(r.Gaps) != 2 || r.Gaps[0].Reason != "the tail after the checkpoint" {
						t.Fatalf("a: gaps %v, err %v; want the gap Gone found, then the broken stream's and its error", r.Gaps, r.Err)
					}
					return
				}
				if r.Err != nil || len(r.Gaps) != 1 {
					t.Fatalf("a: gaps %v, err %v; want the one gap Gone found", r.Gaps, r.Err)
				}
				return
			}
			if len(keys) != 0 || r.Err != nil || len(r.Gaps) != 0 {
				t.Fatalf("Gone called for %v; a: gaps %v, err %v; want none: its log was read to the end", keys, r.Gaps, r.Err)
			}
		})
	}
}

// The run ends right after a pod went, before its container's goroutine saw it (a SIGTERM right
// after the deletion): what is lost of a deleted pod is reported all the same, and nothing of
// one that still exists (no longer selected), whose log is not read now.
func TestGoneJustBeforeTheEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		deleted bool
	}{
		{name: "deleted", deleted: true},
		{name: "no longer selected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPod("ns", "a", running("app", "a1"))
			var objs []runtime.Object
			if !tc.deleted {
				objs = append(objs, p)
			}
			var gone []string
			f := &Follower{Client: fake.NewClientset(objs...), Export: func(ctx context.Context, tg target.Target, follow bool) export.Result {
				t.Errorf("export of %s (follow %v) after the run ended", tg.Key(), follow)
				return export.Result{Target: tg}
			}, Gone: func(tg target.Target) export.Result {
				gone = append(gone, tg.Key())
				return export.Result{Target: tg, Gaps: []export.Gap{{Reason: "the tail after the checkpoint"}}}
			}}
			f.setDefaults()
			f.containers, f.totals = map[string]*container{}, map[string]*export.Result{}
			tg := target.Of(p, "app")
			c := &container{key: tg.Key(), target: tg, status: instanceOf(tg.Status), wake: make(chan struct{}, 1),
				gone: make(chan struct{}), finished: make(chan struct{}), by: map[int]bool{}}
			f.containers[c.key] = c
			c.retire()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			f.wg.Add(1)
			f.follow(ctx, c)
			r := f.totals[c.key]
			if !tc.deleted {
				if len(gone) != 0 || r != nil {
					t.Fatalf("Gone called for %v, result %+v; want nothing for a pod that still exists", gone, r)
				}
				return
			}
			if len(gone) != 1 || r == nil || len(r.Gaps) != 1 || r.Err != nil {
				t.Fatalf("Gone called for %v, result %+v; want the one gap Gone found", gone, r)
			}
		})
	}
}

// The end of the run reaches containers waiting for a stream at once.
func TestWaitingContainerSeesTheEnd(t *testing.T) {
	h := start(t, []runtime.Object{newPod("ns", "a", running("app", "a1")), newPod("ns", "b", running("app", "b1"))},
		withStreams(1), withExport(func(ctx context.Context, tg target.Target, follow bool) export.Result { return stream(ctx, tg) }))
	h.next()
	h.waitFor("one to wait", func() bool { return h.f.Stats().Waiting == 1 })
	h.stop()
	h.none()
}

// -A without the right to list pods cluster-wide follows each namespace it may read and names the
// others.
func TestForbiddenAllNamespacesFallsBack(t *testing.T) {
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "secret"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
		newPod("a", "p", running("app", "a1")),
		newPod("secret", "p", running("app", "s1")),
		newPod("b", "p", running("app", "b1")),
	}
	var named []string
	h := &harness{}
	forbid := func(h *harness) {
		h.client.PrependReactor("*", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
			if ns := action.GetNamespace(); ns == "" || ns == "secret" {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no"))
			}
			return false, nil, nil
		})
		h.f.NamespaceError = func(e podselect.NamespaceError) { named = append(named, e.Namespace) }
		h.watchesWanted = 2
	}
	h = start(t, objs, allNamespaces, forbid)
	got := map[string]bool{h.next().t.Key(): true, h.next().t.Key(): true}
	if !got["a/p/app"] || !got["b/p/app"] {
		t.Fatalf("followed %v, want a/p/app and b/p/app", got)
	}
	h.none()
	h.stop()
	if len(named) != 1 || named[0] != "secret" || len(h.nsErrs) != 1 || h.nsErrs[0].Namespace != "secret" {
		t.Fatalf("named %v, returned %v; want secret", named, h.nsErrs)
	}
}

// Without -A, a namespace that may not be read is an error, as in one-shot runs.
func TestForbiddenNamespace(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no"))
	})
	f := &Follower{Client: client, Scope: podselect.Scope{Namespace: "ns"}, Export: kubeletLike}
	_, _, err := f.Run(context.Background())
	if !apierrors.IsForbidden(err) {
		t.Fatalf("Run: %v, want forbidden", err)
	}
}

func TestInstanceOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   *corev1.ContainerStatus
		want string
	}{
		{"not reported", nil, ""},
		{"waiting to start", &corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}, ""},
		{"running", ptr(running("c", "id1")), "id1 running"},
		{"terminated", ptr(terminated("c", "id1")), "id1 stopped"},
		{"crash loop serves the last instance", ptr(crashLooping("c", "id1")), "id1 stopped"},
		{"no container ID", &corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{
			StartedAt: metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))}}}, "started:2024-01-01T00:00:00Z running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := instanceOf(tc.st); got != tc.want {
				t.Fatalf("instanceOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
