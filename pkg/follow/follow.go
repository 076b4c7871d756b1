// Package follow keeps exporting while pods run: it watches the selected pods with an informer and
// keeps one log stream per running container, with the same merge and checkpoints as a one-shot
// export, so a directory can switch between the two at any time.
//
// Each selected container has a goroutine of its own that exports it over and over: a stream
// follows the running instance until it ends, breaks, or is interrupted (a new status, another
// container's turn, the reconnect interval, the pod's deletion). An instance that is not running
// and whose log was read to its end is not asked for again until the container's status changes,
// so that finished init containers, Jobs and crash-looping containers leave the streams to the
// running ones. Streams may be bounded by MaxStreams; containers beyond it wait in line (a
// channel's waiting senders are served first come, first served), take turns with the open
// streams, and leave the line when their pod goes. Unbounded, every container has a stream of its
// own and none waits.
package follow

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// ExportFunc exports one container once, as (*export.Exporter).Export does: with follow, the
// stream of a running instance stays open until the container stops, the stream breaks or ctx
// ends; without, it returns once what is served now is stored. It is a parameter, as kubectl
// logs' ConsumeRequestFn is, so that the follower can be tested without a cluster.
type ExportFunc func(ctx context.Context, t target.Target, follow bool) export.Result

// Defaults of the Follower's settings.
const (
	DefaultShareAfter = 5 * time.Second
	DefaultDrainAfter = 5 * time.Second
)

// Follower follows the logs of the selected containers until its context ends.
type Follower struct {
	Client kubernetes.Interface
	Export ExportFunc
	// Gone, if set, is called for a container whose pod went before an export read its log up to
	// the end (none ran, the follower cut the last one's stream, or its request met the
	// deletion), to report what is lost without requesting anything, as
	// (*export.Exporter).Gone does.
	Gone     func(target.Target) export.Result
	Scope    podselect.Scope
	Selector podselect.Selector
	// Selections, if set, are followed instead of Scope and Selector: one informer per selection
	// (per readable namespace of an all-namespaces one), and a container that several select is
	// followed once, until none does.
	Selections []podselect.Selection
	// MaxStreams bounds the exports running at once; containers beyond it wait for their turn,
	// and streams give way to them after ShareAfter. Zero: no bound, a stream for every container
	// for as long as it runs.
	MaxStreams int
	// Resync is the informer's resync period.
	Resync time.Duration
	// Backoff paces reconnects after a failed stream.
	Backoff wait.Backoff
	// EndedBackoff paces new requests after a stream that ended cleanly while the status still
	// says the container runs: a kubelet ends a stream when the container stops, and the status
	// saying so may come a little later (or, from a server that closes streams, never).
	EndedBackoff wait.Backoff
	// Reconnect, if set, ends every stream after that long and opens it again from the
	// checkpoint: a safety net for a server that keeps streaming the old file after a rotation.
	Reconnect time.Duration
	// ShareAfter is how long a stream keeps its slot while other containers wait for one: then it
	// ends (its checkpoint saved) and queues again, so that every container gets its turn.
	// DefaultShareAfter if zero.
	ShareAfter time.Duration
	// DrainAfter is how long the stream of a deleted pod may still deliver what the container
	// wrote before it went. DefaultDrainAfter if zero.
	DrainAfter time.Duration
	// Clock drives every timer; clock.RealClock if nil.
	Clock clock.Clock
	// RecordGaps, if set, keeps the gaps the follower finds itself (a stream that was broken when
	// its pod went) beside the log, as an export keeps its own.
	RecordGaps func(target.Target, []export.Gap) error
	// Report, if set, is called (from one goroutine at a time) after each export of a container
	// ends: a stream closed, failed or was stopped.
	Report func(export.Result)
	// NamespaceError, if set, is called before following starts for each namespace whose pods
	// may not be read, when all namespaces are followed without the right to list them at once.
	NamespaceError func(podselect.NamespaceError)
	// Synced, if set, is called once the informers have synced, with the containers selected
	// then (sorted by key), so that the caller can load their checkpoints and say it is ready.
	Synced func([]target.Target)
	// Metrics, if set, is told of the follower's events; its numbers of streams and containers
	// are in Stats.
	Metrics Metrics

	// labels are the selections' label selectors, parsed.
	labels     []labels.Selector
	mu         sync.Mutex
	containers map[string]*container
	totals     map[string]*export.Result
	slots      chan struct{}
	wg         sync.WaitGroup
	waiting    int
	open       int
}

// Metrics receives the follower's events, for monitoring. Its methods are called from many
// goroutines at once.
type Metrics interface {
	// Reconnect is called when a broken stream is about to be opened again.
	Reconnect(namespace string)
	// Gaps is called with the number of gaps an export of a container in namespace reported.
	Gaps(namespace string, n int)
}

// Why a stream was ended by the follower rather than by the server.
var (
	errNewStatus = errors.New("the container's status changed")
	errShare     = errors.New("other containers wait for a stream")
	errReconnect = errors.New("reconnect interval reached")
	errPodGone   = errors.New("the pod is gone")
)

// container is one followed container of one pod.
type container struct {
	key string

	// Guarded by Follower.mu.
	target target.Target
	// status is instanceOf(target.Status): what of the status decides what to request.
	status string
	// stored is the status whose instance's log was stored to its end ("" if none).
	stored string
	// streamed is the status the open export was started with, "" if none is open.
	streamed  string
	interrupt context.CancelCauseFunc

	// wake is signalled when the status changes.
	wake chan struct{}
	// gone is closed when the pod is deleted, replaced by one of the same name, or no longer
	// selected.
	gone     chan struct{}
	goneOnce sync.Once
	// finished is closed when the container's goroutine has let go of its file; the container of
	// a new pod with the same name waits for it (after) before it touches the file.
	finished chan struct{}
	after    *container
	// by holds the selections whose informers have the pod (guarded by Follower.mu); created is
	// the pod's creation time.
	by      map[int]bool
	created metav1.Time

	// Owned by the container's goroutine: when the last stream broke and why, zero if it did
	// not; whether the log was read up to now by the last export that got it served: one whose
	// stream the server ended or that drained after the pod went. Not before any did, nor after
	// the follower cut one (another container's turn, the reconnect interval, a new status): what
	// the container logged after the checkpoint may be unread then, and lost if its pod goes.
	brokeAt  time.Time
	lastErr  error
	caughtUp bool
	// confirmed, also the goroutine's: the status for which it read a stopped container once
	// more to confirm its end (see export.Result.Confirm).
	confirmed string
}

func (c *container) retire() {
	c.goneOnce.Do(func() { close(c.gone) })
}

// retired tells whether the container's pod went or is no longer selected.
func (c *container) retired() bool {
	select {
	case <-c.gone:
		return true
	default:
		return false
	}
}

// instanceOf names what the log API serves as the current log of a container with this status,
// and whether it runs: when it changes, there is something new to request. It is "" before the
// container has started. Container IDs are empty on some servers (kwok), so the start time
// stands in for them.
func instanceOf(st *corev1.ContainerStatus) string {
	if st == nil {
		return ""
	}
	id := func(id string, started metav1.Time) string {
		if id != "" {
			return id
		}
		return "started:" + started.UTC().Format(time.RFC3339Nano)
	}
	switch s := st.State; {
	case s.Running != nil:
		return id(st.ContainerID, s.Running.StartedAt) + " running"
	case s.Terminated != nil:
		cid := s.Terminated.ContainerID
		if cid == "" {
			cid = st.ContainerID
		}
		return id(cid, s.Terminated.StartedAt) + " stopped"
	case st.LastTerminationState.Terminated != nil:
		// Waiting to restart: the kubelet serves the last terminated instance as the current log.
		last := st.LastTerminationState.Terminated
		return id(last.ContainerID, last.StartedAt) + " stopped"
	}
	return ""
}

// Stats is a snapshot of the follower's state.
type Stats struct {
	// Containers are followed; Stored of them have stopped and are stored to their end.
	Containers, Stored int
	// Open exports run now; Waiting containers wait for a free one.
	Open, Waiting int
}

// Stats returns the current numbers, for a status line.
func (f *Follower) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Stats{Containers: len(f.containers), Open: f.open, Waiting: f.waiting}
	for _, c := range f.containers {
		if c.stored != "" && c.stored == c.status {
			s.Stored++
		}
	}
	return s
}

func (f *Follower) setDefaults() {
	if f.Clock == nil {
		f.Clock = clock.RealClock{}
	}
	if f.ShareAfter <= 0 {
		f.ShareAfter = DefaultShareAfter
	}
	if f.DrainAfter <= 0 {
		f.DrainAfter = DefaultDrainAfter
	}
	if f.Backoff.Steps == 0 {
		f.Backoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 10 * time.Second}
	}
	if f.EndedBackoff.Steps == 0 {
		f.EndedBackoff = wait.Backoff{Duration: 2 * time.Second, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: time.Minute}
	}
}

// Run follows until ctx ends and returns, per container, what the session exported (lines and
// bytes summed, every gap, the outcome of the last export), sorted by namespace, pod and
// container, and the namespaces it could not follow.
func (f *Follower) Run(ctx context.Context) ([]export.Result, []podselect.NamespaceError, error) {
	f.setDefaults()
	f.containers = map[string]*container{}
	f.totals = map[string]*export.Result{}
	f.slots = nil
	if f.MaxStreams > 0 {
		f.slots = make(chan struct{}, f.MaxStreams)
	}
	labelSels, err := labelSelectors(f.selections())
	if err != nil {
		return nil, nil, err
	}
	f.labels = labelSels
	watches, nsErrs, err := f.watches(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range nsErrs {
		if f.NamespaceError != nil {
			f.NamespaceError(e)
		}
	}
	handler := func(sel int) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { f.upsert(ctx, sel, obj) },
			UpdateFunc: func(_, obj any) { f.upsert(ctx, sel, obj) },
			DeleteFunc: func(obj any) {
				if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				if p, ok := obj.(*corev1.Pod); ok {
					f.remove(sel, p)
				}
			},
		}
	}
	// One informer per namespace when only some may be read; a multi-namespace informer would
	// need a list and watch per namespace all the same.
	var factories []informers.SharedInformerFactory
	var synced []cache.InformerSynced
	for _, w := range watches {
		scope := f.selections()[w.sel].Scope
		factory := informers.NewSharedInformerFactoryWithOptions(f.Client, f.Resync, informers.WithNamespace(w.namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.LabelSelector, o.FieldSelector = scope.LabelSelector, scope.FieldSelector
			}),
			informers.WithTransform(slimPod))
		reg, err := factory.Core().V1().Pods().Informer().AddEventHandler(handler(w.sel))
		if err != nil {
			return nil, nil, fmt.Errorf("watching pods: %w", err)
		}
		synced = append(synced, reg.HasSynced)
		factories = append(factories, factory)
	}
	for _, factory := range factories {
		factory.Start(ctx.Done())
	}
	f.waitSynced(ctx, synced)
	<-ctx.Done()
	for _, factory := range factories {
		factory.Shutdown()
	}
	f.wg.Wait()
	out := make([]export.Result, 0, len(f.totals))
	for _, r := range f.totals {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nsErrs, nil
}

// waitSynced waits until the handler has seen every pod of the informers' first lists (not only
// until the caches hold them) and calls Synced.
func (f *Follower) waitSynced(ctx context.Context, synced []cache.InformerSynced) {
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	klog.V(1).InfoS("informers synced")
	if f.Synced == nil {
		return
	}
	f.mu.Lock()
	targets := make([]target.Target, 0, len(f.containers))
	for _, c := range f.containers {
		targets = append(targets, c.target)
	}
	f.mu.Unlock()
	sort.Slice(targets, func(i, j int) bool { return targets[i].Key() < targets[j].Key() })
	f.Synced(targets)
}

// namespaces returns where to run an informer: the scope's namespace, all namespaces, or, when
// listing pods in all namespaces is forbidden, each namespace whose pods may be listed, as
// one-shot runs do (podselect.List). An informer retries a forbidden or failing list forever, so
// each is tried once up front and said instead.
func (f *Follower) namespaces(ctx context.Context, scope podselect.Scope) ([]string, []podselect.NamespaceError, error) {
	probe := func(ns string) error {
		_, err := f.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1,
			LabelSelector: scope.LabelSelector, FieldSelector: scope.FieldSelector})
		return err
	}
	if !scope.AllNamespaces {
		if err := probe(scope.Namespace); err != nil {
			return nil, nil, fmt.Errorf("listing pods in namespace %s: %w", scope.Namespace, err)
		}
		return []string{scope.Namespace}, nil, nil
	}
	err := probe(metav1.NamespaceAll)
	if err == nil {
		return []string{metav1.NamespaceAll}, nil, nil
	}
	if !apierrors.IsForbidden(err) {
		return nil, nil, fmt.Errorf("listing pods in all namespaces: %w", err)
	}
	klog.V(1).InfoS("listing pods in all namespaces is forbidden; following namespace by namespace", "err", err)
	list, nerr := f.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if nerr != nil {
		return nil, nil, fmt.Errorf("listing pods in all namespaces: %w (and listing namespaces: %v)", err, nerr)
	}
	names := make([]string, 0, len(list.Items))
	for _, n := range list.Items {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	var readable []string
	var failed []podselect.NamespaceError
	for _, ns := range names {
		if err := probe(ns); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			failed = append(failed, podselect.NamespaceError{Namespace: ns, Err: err})
			continue
		}
		readable = append(readable, ns)
	}
	return readable, failed, nil
}

// upsert starts following each container of a new pod that selection sel selects, and hands the
// newest status to the followed ones.
func (f *Follower) upsert(ctx context.Context, sel int, obj any) {
	selector := f.selections()[sel].Selector
	p, ok := obj.(*corev1.Pod)
	if !ok || !selector.Selects(p.Namespace, p.Name) {
		return
	}
	if !f.labels[sel].Matches(labels.Set(p.Labels)) {
		// An API server says DELETED to a watch whose label selector a pod no longer matches;
		// a cache or a fake may not.
		f.remove(sel, p)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range selector.Targets(p) {
		k := t.Key()
		status := instanceOf(t.Status)
		var after *container
		if c, ok := f.containers[k]; ok {
			if c.target.PodUID == t.PodUID && !c.retired() {
				c.by[sel] = true
				c.target = t
				if status != c.status {
					c.status = status
					if c.streamed != "" && c.streamed != status {
						// A kubelet ends the stream of a stopped container itself, but nothing
						// promises it (kwok does not): the new instance, or the stopped one's
						// end, is read by the next export.
						c.interrupt(errNewStatus)
					}
					select {
					case c.wake <- struct{}{}:
					default:
					}
				}
				continue
			}
			if c.target.PodUID != t.PodUID && p.CreationTimestamp.Before(&c.created) {
				// The pod the name had before, from an informer of another selection that has
				// not seen it go yet.
				continue
			}
			// A new pod with the old name (a StatefulSet's), or the same pod selected again
			// after no selection did (its labels moved from one selection to another): the old
			// one is done, the file goes on once it has let go of it.
			c.retire()
			after = c
		}
		c := &container{key: k, target: t, status: status, wake: make(chan struct{}, 1),
			gone: make(chan struct{}), finished: make(chan struct{}), after: after,
			by: map[int]bool{sel: true}, created: p.CreationTimestamp}
		f.containers[k] = c
		f.wg.Add(1)
		go f.follow(ctx, c)
	}
}

// remove ends following a pod that was deleted or no longer matches selection sel's selectors,
// unless another selection still selects it.
func (f *Follower) remove(sel int, p *corev1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.target.Namespace == p.Namespace && c.target.Pod == p.Name && c.target.PodUID == string(p.UID) {
			delete(c.by, sel)
			if len(c.by) == 0 {
				c.retire()
			}
		}
	}
}

// follow exports one container over and over until its pod is gone or ctx ends.
func (f *Follower) follow(ctx context.Context, c *container) {
	defer f.wg.Done()
	defer close(c.finished)
	if c.after != nil {
		select {
		case <-c.after.finished:
		case <-ctx.Done():
			return
		}
		c.after = nil
	}
	defer func() {
		f.mu.Lock()
		if f.containers[c.key] == c {
			delete(f.containers, c.key)
		}
		f.mu.Unlock()
	}()
	failed, ended := f.Backoff, f.EndedBackoff
	for ctx.Err() == nil {
		select {
		case <-c.gone:
			f.final(ctx, c)
			return
		default:
		}
		f.mu.Lock()
		done := c.stored != "" && c.stored == c.status
		f.mu.Unlock()
		// How long to wait before the next export; negative: until the status changes.
		delay := time.Duration(-1)
		if !done {
			res, status, cause, ok := f.exportOnce(ctx, c)
			if !ok {
				continue // gone or ended while waiting for a turn
			}
			switch {
			case apierrors.IsNotFound(res.Err):
				// Nothing was served: the log is read as far as before. (A pod deleted after
				// the follower took its turn, before its request came.)
			case res.Err == nil:
				// An end not confirmed yet may be a stream cut short (see export.Result.Confirm).
				c.caughtUp = (cause == nil || errors.Is(cause, errPodGone)) && !res.Confirm
			default:
				// The stream broke: what it had not delivered since the checkpoint is unread,
				// and lost if the pod goes before the next request (the broken stream's own gap
				// begins only at the break).
				c.caughtUp = false
			}
			switch {
			case ctx.Err() != nil:
			case cause != nil:
				// Interrupted: a new status, another container's turn, the reconnect interval, or
				// the pod went. Go again (the gone check comes first).
				klog.V(3).InfoS("log stream interrupted", "container", c.key, "reason", cause)
				delay = 0
			case res.Err != nil:
				// The pod deleted before the informer said so is not a broken stream: nothing
				// more is served.
				if !apierrors.IsNotFound(res.Err) {
					if c.brokeAt.IsZero() {
						c.brokeAt = f.Clock.Now()
					}
					c.lastErr = res.Err
				}
				delay = failed.Step()
				if f.Metrics != nil {
					f.Metrics.Reconnect(res.Namespace)
				}
				klog.V(1).InfoS("log stream failed; reconnecting", "container", c.key, "err", res.Err, "after", delay)
			case res.Skipped != "":
				// Not started: the next status says when.
			case res.Confirm && (c.confirmed != status || res.Lines > 0):
				// It stopped, and the stream read it to the end as served: one more read confirms
				// that end (a stream cut short can end as normally), now rather than never. Again
				// while a read stores more (the one before was cut short); an end that two reads
				// in a row agree on without the window proving it (an empty log; a read cut inside
				// the stored window, reported as a possible gap) is left to one-shot runs, which
				// read it again, rather than polled.
				c.confirmed = status
				delay = 0
				klog.V(2).InfoS("container stopped; reading its log once more to confirm its end", "container", c.key)
			case res.Complete || res.Confirm:
				// Stored to its end: not requested again until the status changes. The merge may
				// have read a fresher status than the one it was given.
				stored := instanceOf(res.Target.Status)
				if res.Target.Status == nil {
					stored = status
				}
				f.mu.Lock()
				c.stored = stored
				f.mu.Unlock()
				klog.V(2).InfoS("container stopped and its log is stored to its end", "container", c.key, "instance", stored)
			default:
				// Ended while the status says running: the status may lag behind a container that
				// stopped. Look again, later each time nothing comes.
				if res.Lines > 0 {
					ended = f.EndedBackoff
				}
				delay = ended.Step()
				klog.V(2).InfoS("log stream ended while the container runs; requesting it again", "container", c.key, "after", delay)
			}
			if res.Err == nil && cause == nil {
				failed, c.brokeAt, c.lastErr = f.Backoff, time.Time{}, nil
			}
			f.mu.Lock()
			moved := c.status != status
			f.mu.Unlock()
			if moved {
				// The status changed while the export ran; its wake is for this.
				select {
				case <-c.wake:
				default:
				}
				ended = f.EndedBackoff
				continue
			}
		}
		if delay == 0 {
			continue
		}
		var timeout <-chan time.Time
		var timer clock.Timer
		if delay > 0 {
			timer = f.Clock.NewTimer(delay)
			timeout = timer.C()
		}
		select {
		case <-timeout:
		case <-c.wake:
			ended = f.EndedBackoff
		case <-c.gone:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
	if c.retired() {
		// The run ended right after the pod went, before this saw it (a SIGTERM right after a
		// deletion; a goroutine woken by both takes either): what is lost is still reported.
		f.final(ctx, c)
	}
}

// acquire waits for a free stream, and gives up when gone is closed or ctx ends.
func (f *Follower) acquire(ctx context.Context, gone <-chan struct{}) bool {
	if f.slots == nil {
		select {
		case <-gone:
			return false
		case <-ctx.Done():
			return false
		default:
			return true
		}
	}
	f.mu.Lock()
	f.waiting++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.waiting--
		f.mu.Unlock()
	}()
	select {
	case f.slots <- struct{}{}:
	case <-gone:
		return false
	case <-ctx.Done():
		return false
	}
	// When both were ready the choice was random.
	select {
	case <-gone:
		f.release()
		return false
	default:
		return true
	}
}

// release frees the stream acquire took.
func (f *Follower) release() {
	if f.slots != nil {
		<-f.slots
	}
}

// exportOnce follows the container's current instance in a stream of its own, until it ends or
// the follower interrupts it; cause says why it did. ok is false when the pod went or ctx ended
// while the container waited for its turn.
func (f *Follower) exportOnce(ctx context.Context, c *container) (res export.Result, status string, cause error, ok bool) {
	if !f.acquire(ctx, c.gone) {
		return res, "", nil, false
	}
	defer f.release()
	ectx, interrupt := context.WithCancelCause(ctx)
	defer interrupt(nil)
	f.mu.Lock()
	// The newest status: a container that waited for its turn may have restarted meanwhile.
	t := c.target
	status = c.status
	c.streamed, c.interrupt = status, interrupt
	if status == "" {
		c.streamed = "not started"
	}
	f.open++
	f.mu.Unlock()
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		f.watch(ectx, c, interrupt, done)
	}()
	res = f.Export(ectx, t, true)
	close(done)
	<-watched
	f.mu.Lock()
	f.open--
	c.streamed, c.interrupt = "", nil
	f.mu.Unlock()
	if ectx.Err() != nil && ctx.Err() == nil {
		cause = context.Cause(ectx)
	}
	// A stream cut by the follower (or by the end of the run) fails with the cause it was given,
	// as net/http reports it.
	if ectx.Err() != nil && (isCanceled(res.Err) || errors.Is(res.Err, context.Cause(ectx))) {
		res.Err = nil
	}
	recorded := res
	if apierrors.IsNotFound(res.Err) {
		// The pod was deleted and the informer has not said so yet: no failure.
		recorded.Err = nil
	}
	f.record(recorded)
	return res, status, cause, true
}

// watch ends a stream when other containers have waited ShareAfter for a turn, when the
// reconnect interval is reached, and DrainAfter after the pod went.
func (f *Follower) watch(ctx context.Context, c *container, interrupt context.CancelCauseFunc, done <-chan struct{}) {
	// Timers rather than a ticker: a stopped fake ticker stays among a fake clock's waiters,
	// which tests count. Without a bound nobody waits, and a stream never gives way.
	var share clock.Timer
	var shareC <-chan time.Time
	if f.slots != nil {
		share = f.Clock.NewTimer(f.ShareAfter)
		defer share.Stop()
		shareC = share.C()
	}
	var reconnect, drain <-chan time.Time
	if f.Reconnect > 0 {
		r := f.Clock.NewTimer(f.Reconnect)
		defer r.Stop()
		reconnect = r.C()
	}
	gone := c.gone
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-gone:
			// Let the stream deliver what the container wrote before it went, then stop it.
			// Neither another container's turn nor the reconnect interval cuts it now: its log
			// is not served again, and what the stream had not delivered would be lost.
			// (Their timers run on unread, so that a test's fake clock counts the same timers
			// before the drain's and after.)
			gone = nil
			shareC, reconnect = nil, nil
			d := f.Clock.NewTimer(f.DrainAfter)
			defer d.Stop()
			drain = d.C()
		case <-drain:
			interrupt(errPodGone)
			return
		case <-reconnect:
			interrupt(errReconnect)
			return
		case <-shareC:
			f.mu.Lock()
			waiting := f.waiting
			f.mu.Unlock()
			if waiting > 0 {
				interrupt(errShare)
				return
			}
			share.Reset(f.ShareAfter)
		}
	}
}

// final ends following a container whose pod went. If the pod still exists (it no longer
// matches the selectors), what it wrote since the last export is read once more, without
// following, unless its instance is stored to its end. A deleted pod's log is no longer served
// (404), and its name may already belong to a new pod (a StatefulSet's) whose log a request
// would return: then what the streams stored is all there is, and that is no failure; only a
// log not read up to the end since the checkpoint (see caughtUp), or a stream that had broken
// before, may have missed lines, reported as gaps.
func (f *Follower) final(ctx context.Context, c *container) {
	f.mu.Lock()
	t, done := c.target, c.stored != "" && c.stored == c.status
	f.mu.Unlock()
	if done {
		return
	}
	ended := ctx.Err() != nil
	if ended {
		// The run ends: whether the pod is deleted is asked all the same, as what was read is
		// proven (export's prove), so that a loss the run can know of is reported.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), goneTimeout)
		defer cancel()
	}
	p, err := f.Client.CoreV1().Pods(t.Namespace).Get(ctx, t.Pod, metav1.GetOptions{})
	if deleted := apierrors.IsNotFound(err) || err == nil && string(p.UID) != t.PodUID; ended && !deleted {
		// The pod still exists, no longer selected (its log is not read once more: the run
		// ends), or whether it does is not known: nothing is known lost.
		return
	}
	if err == nil && string(p.UID) == t.PodUID {
		if !f.acquire(ctx, nil) {
			return
		}
		res := f.Export(ctx, t, false)
		f.release()
		if !apierrors.IsNotFound(res.Err) {
			f.record(res)
			return
		}
		err = res.Err
	}
	klog.V(2).InfoS("pod gone; its log is no longer served", "container", c.key, "err", err)
	if f.Gone != nil && !c.caughtUp {
		// Not read up to the end since the checkpoint: what it logged after it is lost. A stream
		// that broke since adds its own gap below, with its error.
		if res := f.Gone(t); len(res.Gaps) > 0 || res.Err != nil {
			f.record(res)
		}
	}
	if c.brokeAt.IsZero() {
		return
	}
	gaps := []export.Gap{{From: c.brokeAt,
		Reason: "the pod was deleted while its log stream was broken; what it logged after the stream broke is lost"}}
	err = c.lastErr
	if f.RecordGaps != nil {
		if rerr := f.RecordGaps(t, gaps); rerr != nil && err == nil {
			err = rerr
		}
	}
	f.record(export.Result{Target: t, Err: err, Gaps: gaps})
}

// goneTimeout bounds the request that tells, as the run ends, whether a pod that went is deleted.
const goneTimeout = 10 * time.Second

// record adds one export to the session's totals and reports it. A container's outcome is its
// last export's: a failure that a later export recovered from is not one.
func (f *Follower) record(res export.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := res.Key()
	tot, ok := f.totals[k]
	if !ok {
		tot = &export.Result{}
		f.totals[k] = tot
	}
	tot.Target = res.Target
	if res.File != "" {
		tot.File = res.File
	}
	tot.Lines += res.Lines
	tot.Bytes += res.Bytes
	tot.Gaps = append(tot.Gaps, res.Gaps...)
	if f.Metrics != nil && len(res.Gaps) > 0 {
		f.Metrics.Gaps(res.Namespace, len(res.Gaps))
	}
	tot.Skipped = res.Skipped
	if !isCanceled(res.Err) {
		tot.Err = res.Err
	}
	if f.Report != nil {
		f.Report(res)
	}
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
