package shard

// The lease protocol: one writer per shard of a destination, and no two shard counts at once.
//
// Every process that writes a destination (a directory, a bucket) as shard i of N holds the
// coordination.k8s.io/v1 Lease "logexport-<D>-<i>", where D is the first 16 hex digits of the
// SHA-256 of the destination (an absolute directory or a bucket URL), so that different
// destinations never share a lease. The lease carries the labels
//
//	logexport.io/destination:  D
//	logexport.io/shard-index:  i
//	logexport.io/total-shards: N
//
// The holder renews it every RetryPeriod (client-go's leaderelection with a LeaseLock does the
// acquiring and renewing) and stops writing as soon as a renewal has failed for RenewDeadline: its
// held context is cancelled with ErrLost. Another process takes a lease over once its holder has
// released it, or once it has seen it unchanged for LeaseDuration (by its own clock, so clocks
// need not agree; only their rates must). What the old holder does after its context is cancelled
// must therefore fit in LeaseDuration - RenewDeadline - RetryPeriod (3 s with the defaults): stop,
// not start new writes.
//
// Shard counts: while N changes (a StatefulSet rolled from 2 to 3 replicas), an old replica
// (shard 0 of 2) and a new one (shard 2 of 3) would own some of the same pods under different
// leases. So a process writes only while every live lease of the destination (held, and seen
// renewed within its duration) says the same N as its own:
//
//  1. Wait until no live lease of the destination has another N (a list by the destination's
//     label, every RetryPeriod).
//  2. Acquire its own lease, recording its N (waiting for a live holder to release it or stop
//     renewing).
//  3. List again. If a live lease of another N is there, release its own lease and go back to 1
//     after a random part of RetryPeriod; otherwise write.
//
// Step 3 is what makes two counts at once impossible, and not only unlikely: two processes that
// disagree each record their lease (2) before they look for the other (3), and the API server's
// reads are linearizable, so the one that looks last sees the other's lease. A lease seen for the
// first time counts as live for its whole duration. A writer does not look again: whoever comes
// after it sees its lease and waits. Replicas of a new count therefore wait until the last
// replica of the old count has stopped (released on SIGTERM, or expired); during a rollout some
// shards wait for a while, none is written twice.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// The labels every lease of a destination carries.
const (
	LabelDestination = "logexport.io/destination"
	LabelShardIndex  = "logexport.io/shard-index"
	LabelTotalShards = "logexport.io/total-shards"
)

// Defaults of LeaseOptions, those of Kubernetes' own controllers.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// ErrLost is the cause of a held context cancelled because its lease could not be renewed.
var ErrLost = errors.New("lost the lease")

// LeaseOptions say which lease to hold, and how.
type LeaseOptions struct {
	// Namespace holds the leases.
	Namespace string
	// Destination is what the holder writes to: an absolute directory or a bucket URL. Leases of
	// the same destination are one group: one per shard, all of one total.
	Destination string
	// Shard is which part the holder writes; Total 1 (or 0) for a writer of every pod.
	Shard Shard
	// Identity names the holder in the lease (HolderIdentity); Identity() if empty.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are leaderelection's; the defaults if zero.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Waiting, if set, is told why Acquire waits: when it starts to, and again only when the
	// reason changes. Acquired is told when the lease is taken after a wait.
	Waiting, Acquired func(message string)
}

// LeaseName is the name of the lease of shard index of a destination.
func LeaseName(destination string, index int) string {
	return fmt.Sprintf("logexport-%s-%d", DestinationID(destination), index)
}

// DestinationID is the short hash of a destination that its leases' names and labels hold.
func DestinationID(destination string) string {
	sum := sha256.Sum256([]byte(destination))
	return hex.EncodeToString(sum[:8])
}

// Identity is a holder identity for this process: the host name (a pod's name in a cluster) and
// a random suffix, so that a restarted process never takes its predecessor's lease for its own.
func Identity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "kubectl-logexport"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return host + "_" + hex.EncodeToString(b)
}

func (o *LeaseOptions) setDefaults() {
	if o.Shard.Total < 1 {
		o.Shard = Shard{Total: 1}
	}
	if o.Identity == "" {
		o.Identity = Identity()
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
}

// Acquire waits until this process may write its shard of the destination (see the protocol
// above) and returns a context that stays live while it may, and release, which stops renewing
// and gives the lease up; call it once writing has stopped (after held is done, or to stop). held
// is cancelled with ErrLost (context.Cause) when the lease could not be renewed, and when ctx is.
// Acquire returns ctx's error if ctx ends first.
func Acquire(ctx context.Context, client kubernetes.Interface, o LeaseOptions) (held context.Context, release func(), err error) {
	o.setDefaults()
	if err := o.Shard.Validate(); err != nil {
		return nil, nil, err
	}
	if o.Namespace == "" {
		return nil, nil, errors.New("the lease needs a namespace")
	}
	if o.LeaseDuration < time.Second {
		// A lease records whole seconds; leaderelection would record 0 and never hold it.
		return nil, nil, fmt.Errorf("the lease duration must be at least a second, got %s", o.LeaseDuration)
	}
	a := &acquirer{client: client, o: o, name: LeaseName(o.Destination, o.Shard.Index),
		seen: map[string]observed{}}
	for {
		if err := a.waitAgreement(ctx); err != nil {
			return nil, nil, err
		}
		e, err := a.elect(ctx)
		if err != nil {
			return nil, nil, err
		}
		conflicts, err := a.conflicts(ctx)
		if err == nil && len(conflicts) == 0 {
			a.mu.Lock()
			a.holding = true
			a.mu.Unlock()
			if a.waited && o.Acquired != nil {
				o.Acquired(fmt.Sprintf("took the lease %s/%s for %s", o.Namespace, a.name, o.Shard))
			}
			return e.held, e.release, nil
		}
		e.release()
		if err != nil {
			return nil, nil, err
		}
		a.wait(disagreement(o.Shard.Total, conflicts))
		// Two processes that saw each other both let go: a random pause lets one go first.
		if err := sleep(ctx, jitter(o.RetryPeriod)); err != nil {
			return nil, nil, err
		}
	}
}

type acquirer struct {
	client kubernetes.Interface
	o      LeaseOptions
	name   string
	// seen is when each lease of the destination was last seen to change (its holder or renew
	// time): it is live for its duration from then.
	seen map[string]observed
	// mu guards said, waited and holding, told from the elector's goroutines too.
	mu     sync.Mutex
	said   string
	waited bool
	// holding is set once Acquire returns the lease: a late word from the elector about a
	// holder before us is not a wait.
	holding bool
}

type observed struct {
	version string
	at      time.Time
}

// wait tells why Acquire waits, unless it said so last.
func (a *acquirer) wait(reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.holding {
		return
	}
	a.waited = true
	if reason == a.said {
		return
	}
	a.said = reason
	klog.V(1).InfoS("waiting for the lease", "lease", a.name, "reason", reason)
	if a.o.Waiting != nil {
		a.o.Waiting(reason)
	}
}

// waitAgreement waits until no live lease of the destination has another total than ours.
func (a *acquirer) waitAgreement(ctx context.Context) error {
	for {
		conflicts, err := a.conflicts(ctx)
		if err != nil {
			return err
		}
		if len(conflicts) == 0 {
			return nil
		}
		a.wait(disagreement(a.o.Shard.Total, conflicts))
		if err := sleep(ctx, a.o.RetryPeriod); err != nil {
			return err
		}
	}
}

// conflicts lists the live leases of the destination, other than ours, whose total is not ours,
// sorted by name.
func (a *acquirer) conflicts(ctx context.Context) ([]string, error) {
	sel := labels.Set{LabelDestination: DestinationID(a.o.Destination)}.AsSelector().String()
	list, err := a.client.CoordinationV1().Leases(a.o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("listing the leases of the destination in namespace %s: %w", a.o.Namespace, err)
	}
	now := time.Now()
	var out []string
	for i := range list.Items {
		l := &list.Items[i]
		if l.Name == a.name || !a.live(l, now) {
			continue
		}
		total := l.Labels[LabelTotalShards]
		if total == strconv.Itoa(a.o.Shard.Total) {
			continue
		}
		out = append(out, fmt.Sprintf("%s (held by %s) has %s", l.Name, holder(l), total))
	}
	sort.Strings(out)
	return out, nil
}

// live tells whether a lease is held and was seen renewed within its duration.
func (a *acquirer) live(l *coordinationv1.Lease, now time.Time) bool {
	h := holder(l)
	version := h
	if l.Spec.RenewTime != nil {
		version += " " + l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	s, ok := a.seen[l.Name]
	if !ok || s.version != version {
		s = observed{version: version, at: now}
		a.seen[l.Name] = s
	}
	if h == "" {
		return false
	}
	d := a.o.LeaseDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return now.Sub(s.at) < d
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func disagreement(total int, conflicts []string) string {
	return fmt.Sprintf("the leases of the destination disagree on --total-shards: this run has %d, %s", total, strings.Join(conflicts, ", "))
}

// election is our lease, held.
type election struct {
	held    context.Context
	release func()
}

// elect takes our lease, waiting while another holder keeps it.
func (a *acquirer) elect(ctx context.Context) (*election, error) {
	o := a.o
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.Namespace, Name: a.name},
		Client:     a.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
		Labels: map[string]string{
			LabelDestination: DestinationID(o.Destination),
			LabelShardIndex:  strconv.Itoa(o.Shard.Index),
			LabelTotalShards: strconv.Itoa(o.Shard.Total),
		},
	}
	leading := make(chan context.Context, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: a.name,
		LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
		// Released by release below, once the writer has stopped: leaderelection's own release on
		// cancel runs before it cancels the leader's context, which could then outlive the lease.
		ReleaseOnCancel: false,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) { leading <- lctx },
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != o.Identity {
					a.wait(fmt.Sprintf("the lease %s/%s for %s is held by %s", o.Namespace, a.name, o.Shard, id))
				}
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("lease %s/%s: %w", o.Namespace, a.name, err)
	}
	// The elector's own messages are diagnostics (-v 2); it renews until release stops it, also
	// after ctx ends, so that the writer can save what it has under the lease.
	runCtx, stopRun := context.WithCancel(klog.NewContext(context.WithoutCancel(ctx), klog.FromContext(ctx).V(2)))
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		elector.Run(runCtx)
	}()
	var lctx context.Context
	select {
	case lctx = <-leading:
	case <-ctx.Done():
		stopRun()
		<-ran
		return nil, ctx.Err()
	}
	held, cancel := context.WithCancelCause(ctx)
	var mu sync.Mutex
	releasing := false
	stopLost := context.AfterFunc(lctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !releasing {
			klog.V(1).InfoS("lost the lease", "lease", a.name)
			cancel(fmt.Errorf("%w %s/%s for %s", ErrLost, o.Namespace, a.name, o.Shard))
		}
	})
	var once sync.Once
	release := func() {
		once.Do(func() {
			mu.Lock()
			releasing = true
			mu.Unlock()
			stopLost()
			cancel(context.Canceled)
			stopRun()
			<-ran
			a.giveUp(ctx)
		})
	}
	return &election{held: held, release: release}, nil
}

// giveUp releases our lease if we still hold it, as leaderelection does: no holder, and a
// duration of a second, so that the next holder need not wait for it to expire.
func (a *acquirer) giveUp(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.o.RenewDeadline)
	defer cancel()
	leases := a.client.CoordinationV1().Leases(a.o.Namespace)
	l, err := leases.Get(ctx, a.name, metav1.GetOptions{})
	if err != nil {
		klog.V(1).InfoS("releasing the lease", "lease", a.name, "err", err)
		return
	}
	if holder(l) != a.o.Identity {
		return
	}
	now := metav1.NewMicroTime(time.Now())
	empty, second := "", int32(1)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &empty, &second
	l.Spec.AcquireTime, l.Spec.RenewTime = &now, &now
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		// It expires anyway.
		klog.V(1).InfoS("releasing the lease", "lease", a.name, "err", err)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jitter is a random duration in [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(d)+1))
	if err != nil {
		return d
	}
	return d/2 + time.Duration(n.Int64())
}
