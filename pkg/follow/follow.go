// Package follow keeps exporting while pods run: it watches the selected pods with an informer and
// keeps one log stream per running container, with the same merge and checkpoints as a one-shot
// export, so a directory can switch between the two at any time.
package follow

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// Follower follows the logs of the selected containers until its context ends.
type Follower struct {
	Client   kubernetes.Interface
	Exporter *export.Exporter
	Scope    podselect.Scope
	Selector podselect.Selector
	// MaxStreams bounds the streams open at once; containers beyond it wait for a free one.
	MaxStreams int
	// Resync is the informer's resync period.
	Resync time.Duration
	// Backoff paces reconnects after a failed stream.
	Backoff wait.Backoff
	// Reconnect, if set, ends every stream after that long and opens it again from the
	// checkpoint: a safety net for a server that keeps streaming the old file after a rotation.
	Reconnect time.Duration
	// Report, if set, is called (from one goroutine at a time) after each export of a container
	// ends: a stream closed, failed or was stopped.
	Report func(export.Result)

	mu        sync.Mutex
	followers map[string]*follower
	totals    map[string]*export.Result
	slots     chan struct{}
	wg        sync.WaitGroup
	waiting   int
	open      int
}

type follower struct {
	target target.Target
	// interrupt ends the export in flight when the container got a new instance: a kubelet ends
	// the old stream itself, but nothing promises it.
	interrupt context.CancelFunc
	instance  string
	wake      chan struct{}
	cancel    context.CancelFunc
	// gone is closed when the pod is deleted or stops matching.
	gone     chan struct{}
	goneOnce sync.Once
	// finished is closed when the follower has let go of its file; a follower for a new pod of
	// the same name waits for it (after) before it touches the file.
	finished chan struct{}
	after    *follower
}

// Stats is a snapshot of the follower's state.
type Stats struct {
	Containers, Open, Waiting int
	Lines, Bytes              int64
}

// Stats returns the current numbers, for a status line.
func (f *Follower) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Stats{Containers: len(f.followers), Open: f.open, Waiting: f.waiting}
	for _, r := range f.totals {
		s.Lines += r.Lines
		s.Bytes += r.Bytes
	}
	return s
}

// Run follows until ctx ends and returns, per container, what the session exported (lines and
// bytes summed, every gap, the last error), sorted by namespace, pod and container.
func (f *Follower) Run(ctx context.Context) ([]export.Result, error) {
	f.followers = map[string]*follower{}
	f.totals = map[string]*export.Result{}
	f.slots = make(chan struct{}, max(f.MaxStreams, 1))
	if f.Backoff.Steps == 0 {
		f.Backoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 10 * time.Second}
	}
	ns := f.Scope.Namespace
	if f.Scope.AllNamespaces {
		ns = metav1.NamespaceAll
	}
	// An informer retries a forbidden or failing list forever; say it once, up front, instead.
	if _, err := f.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1,
		LabelSelector: f.Scope.LabelSelector, FieldSelector: f.Scope.FieldSelector}); err != nil {
		if ns == metav1.NamespaceAll {
			return nil, fmt.Errorf("listing pods in all namespaces: %w", err)
		}
		return nil, fmt.Errorf("listing pods in namespace %s: %w", ns, err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(f.Client, f.Resync, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector, o.FieldSelector = f.Scope.LabelSelector, f.Scope.FieldSelector
		}))
	inf := factory.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.sync(ctx, obj) },
		UpdateFunc: func(_, obj any) { f.sync(ctx, obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				f.stopPod(p.Namespace, p.Name, "")
			}
		},
	})
	if err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	for _, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return nil, context.Cause(ctx)
		}
	}
	<-ctx.Done()
	factory.Shutdown()
	f.wg.Wait()
	var out []export.Result
	for _, r := range f.totals {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i].Target) < key(out[j].Target) })
	return out, nil
}

func key(t target.Target) string { return t.Key() }

// sync starts a follower for each selected container of a pod, and hands the newest status to
// the running ones.
func (f *Follower) sync(ctx context.Context, obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if !f.Selector.MatchPod(p.Name) {
		f.stopPod(p.Namespace, p.Name, "")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.Selector.Targets(p) {
		k := key(t)
		var after *follower
		if fl, ok := f.followers[k]; ok {
			if fl.target.PodUID != t.PodUID {
				// A new pod with the old name: the old follower ends, the file goes on.
				fl.stop()
				after = fl
			} else {
				fl.target = t
				if fl.interrupt != nil && instanceOf(t) != fl.instance {
					fl.interrupt()
				}
				select {
				case fl.wake <- struct{}{}:
				default:
				}
				continue
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		fl := &follower{target: t, wake: make(chan struct{}, 1), cancel: cancel, gone: make(chan struct{}),
			finished: make(chan struct{}), after: after}
		f.followers[k] = fl
		f.wg.Add(1)
		go f.follow(cctx, fl)
	}
}

func (fl *follower) stop() {
	fl.goneOnce.Do(func() {
		close(fl.gone)
		// Let the stream drain what the container wrote before it went, then stop it.
		time.AfterFunc(5*time.Second, fl.cancel)
	})
}

func (f *Follower) stopPod(ns, name, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range f.followers {
		if fl.target.Namespace == ns && fl.target.Pod == name {
			fl.stop()
		}
	}
}

func instanceOf(t target.Target) string {
	if t.Status == nil {
		return ""
	}
	return fmt.Sprintf("%s/%d", t.Status.ContainerID, t.Status.RestartCount)
}

// follow exports one container over and over: each export streams until the container's log
// ends or the stream breaks, then waits for the next status (a restart) or a backoff.
func (f *Follower) follow(ctx context.Context, fl *follower) {
	defer f.wg.Done()
	defer close(fl.finished)
	defer fl.cancel()
	if fl.after != nil {
		<-fl.after.finished
		fl.after = nil
	}
	defer func() {
		f.mu.Lock()
		if f.followers[key(fl.target)] == fl {
			delete(f.followers, key(fl.target))
		}
		f.mu.Unlock()
	}()
	backoff := f.Backoff
	for {
		select {
		case <-fl.gone:
			return
		case <-ctx.Done():
			return
		default:
		}
		res, interrupted, ok := f.exportOnce(ctx, fl)
		if !ok {
			return
		}
		var delay time.Duration
		switch {
		case interrupted:
			// A new instance: take the old one's tail and follow the new one right away.
		case res.Err != nil && ctx.Err() == nil:
			delay = backoff.Step()
			klog.V(1).InfoS("log stream failed; reconnecting", "container", key(res.Target), "err", res.Err, "after", delay)
		case res.Skipped != "":
			delay = time.Hour // until the status changes
		default:
			backoff = f.Backoff
			// The stream ended: the container stopped, or the server closed it. Look again soon,
			// sooner when a new status arrives.
			delay = 2 * time.Second
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-fl.wake:
			t.Stop()
		case <-fl.gone:
			t.Stop()
			// One last export without follow picks up what the container wrote before it went.
			f.finalExport(ctx, fl)
			return
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func (f *Follower) exportOnce(ctx context.Context, fl *follower) (res export.Result, interrupted, ok bool) {
	f.mu.Lock()
	f.waiting++
	f.mu.Unlock()
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		f.mu.Lock()
		f.waiting--
		f.mu.Unlock()
		return export.Result{}, false, false
	}
	ectx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	f.mu.Lock()
	f.waiting--
	f.open++
	t := fl.target
	fl.interrupt, fl.instance = interrupt, instanceOf(t)
	f.mu.Unlock()
	shared := make(chan struct{})
	go f.share(ectx, interrupt, shared)
	res = f.Exporter.Export(ectx, t)
	close(shared)
	<-f.slots
	f.mu.Lock()
	f.open--
	fl.interrupt = nil
	f.mu.Unlock()
	interrupted = ectx.Err() != nil && ctx.Err() == nil
	if interrupted && isCanceled(res.Err) {
		res.Err = nil
	}
	f.record(res)
	return res, interrupted, true
}

// ShareAfter is how long a stream keeps its slot while other containers wait for one: then it
// ends (its checkpoint saved) and queues again, so that every container gets its turn.
var ShareAfter = 5 * time.Second

func (f *Follower) share(ctx context.Context, interrupt context.CancelFunc, done <-chan struct{}) {
	t := time.NewTicker(ShareAfter)
	defer t.Stop()
	var reconnect <-chan time.Time
	if f.Reconnect > 0 {
		r := time.NewTimer(f.Reconnect)
		defer r.Stop()
		reconnect = r.C
	}
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-reconnect:
			interrupt()
			return
		case <-t.C:
			f.mu.Lock()
			waiting := f.waiting
			f.mu.Unlock()
			if waiting > 0 {
				interrupt()
				return
			}
		}
	}
}

func (f *Follower) finalExport(ctx context.Context, fl *follower) {
	e := *f.Exporter
	e.Follow = false
	f.mu.Lock()
	t := fl.target
	f.mu.Unlock()
	res := e.Export(ctx, t)
	f.record(res)
}

// record adds one export to the session's totals and reports it.
func (f *Follower) record(res export.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := key(res.Target)
	tot, ok := f.totals[k]
	if !ok {
		tot = &export.Result{Target: res.Target}
		f.totals[k] = tot
	}
	tot.File = res.File
	tot.Lines += res.Lines
	tot.Bytes += res.Bytes
	tot.Gaps = append(tot.Gaps, res.Gaps...)
	tot.Skipped = res.Skipped
	if res.Err != nil && !isCanceled(res.Err) {
		tot.Err = res.Err
	} else if res.Lines > 0 {
		tot.Err = nil
	}
	if f.Report != nil {
		f.Report(res)
	}
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
