package shard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const (
	testNS   = "logexport"
	testDest = "/data/logs"
)

// Short durations keep the tests quick. A lease records whole seconds (LeaseDurationSeconds), so
// one second is the least that means anything.
func testOptions(id string, s Shard) LeaseOptions {
	return LeaseOptions{Namespace: testNS, Destination: testDest, Shard: s, Identity: id,
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond}
}

// messages collects what Acquire says while it waits.
type messages struct {
	mu   sync.Mutex
	said []string
}

func (m *messages) add(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.said = append(m.said, s)
}

func (m *messages) all() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.said...)
}

// acquisition is an Acquire running in the background.
type acquisition struct {
	held    context.Context
	release func()
	err     error
	done    chan struct{}
	waiting messages
}

func startAcquire(ctx context.Context, client kubernetes.Interface, o LeaseOptions) *acquisition {
	a := &acquisition{done: make(chan struct{})}
	o.Waiting = a.waiting.add
	go func() {
		defer close(a.done)
		a.held, a.release, a.err = Acquire(ctx, client, o)
	}()
	return a
}

func (a *acquisition) wait(t *testing.T) {
	t.Helper()
	select {
	case <-a.done:
		if a.err != nil {
			t.Fatalf("Acquire: %v", a.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Acquire never returned; it said %q", a.waiting.all())
	}
}

// waitSaid waits until the acquisition has said it waits, and checks it has not acquired.
func (a *acquisition) waitSaid(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range a.waiting.all() {
			if strings.Contains(s, want) {
				select {
				case <-a.done:
					t.Fatalf("Acquire returned (err %v) although it said %q", a.err, s)
				default:
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never said %q; said %q", want, a.waiting.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lease(t *testing.T, client kubernetes.Interface, name string) *coordinationv1.Lease {
	t.Helper()
	l, err := client.CoordinationV1().Leases(testNS).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Two processes for the same shard: the second waits, says so once, and takes the lease when
// the first releases it.
func TestAcquireSecondContenderWaits(t *testing.T) {
	ctx := t.Context()
	client := fake.NewClientset()
	s := Shard{Index: 1, Total: 3}
	first := startAcquire(ctx, client, testOptions("first", s))
	first.wait(t)
	var acquired atomic.Value
	o := testOptions("second", s)
	second := &acquisition{done: make(chan struct{})}
	o.Waiting, o.Acquired = second.waiting.add, func(m string) { acquired.Store(m) }
	go func() {
		defer close(second.done)
		second.held, second.release, second.err = Acquire(ctx, client, o)
	}()
	second.waitSaid(t, "is held by first")
	// Well past the lease's duration: the first renews it, so the second goes on waiting.
	time.Sleep(2 * o.LeaseDuration)
	select {
	case <-second.done:
		t.Fatalf("the second took a lease the first renews (err %v)", second.err)
	default:
	}
	if first.held.Err() != nil {
		t.Fatalf("the first lost its lease: %v", context.Cause(first.held))
	}
	name := LeaseName(testDest, 1)
	l := lease(t, client, name)
	if holder(l) != "first" || l.Labels[LabelTotalShards] != "3" || l.Labels[LabelShardIndex] != "1" || l.Labels[LabelDestination] != DestinationID(testDest) {
		t.Fatalf("lease %s: holder %q, labels %v", name, holder(l), l.Labels)
	}
	first.release()
	if !errors.Is(context.Cause(first.held), context.Canceled) || errors.Is(context.Cause(first.held), ErrLost) {
		t.Fatalf("released: cause %v, want canceled", context.Cause(first.held))
	}
	second.wait(t)
	defer second.release()
	if got := second.waiting.all(); len(got) != 1 {
		t.Fatalf("the second said %d things while it waited, want once: %q", len(got), got)
	}
	if m, _ := acquired.Load().(string); !strings.Contains(m, "took the lease "+testNS+"/"+name+" for shard 1/3") {
		t.Fatalf("after waiting: %q", m)
	}
	if h := holder(lease(t, client, name)); h != "second" {
		t.Fatalf("holder %q after the first released", h)
	}
}

// A lease whose holder stopped renewing (killed) is taken over once it has been seen unchanged
// for its duration.
func TestAcquireTakesOverExpiredLease(t *testing.T) {
	s := Shard{Index: 0, Total: 2}
	name := LeaseName(testDest, 0)
	long := metav1.NewMicroTime(time.Now().Add(-time.Hour))
	ghost, d := "ghost", int32(1)
	client := fake.NewClientset(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, Labels: map[string]string{
			LabelDestination: DestinationID(testDest), LabelShardIndex: "0", LabelTotalShards: "2"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &ghost, LeaseDurationSeconds: &d, AcquireTime: &long, RenewTime: &long},
	})
	a := startAcquire(t.Context(), client, testOptions("next", s))
	a.wait(t)
	defer a.release()
	if h := holder(lease(t, client, name)); h != "next" {
		t.Fatalf("holder %q", h)
	}
	if got := a.waiting.all(); len(got) != 1 || !strings.Contains(got[0], "is held by ghost") {
		t.Fatalf("said %q, want that ghost held it", got)
	}
}

// A replica of a new shard count waits while a replica of the old count holds a lease of the
// same destination, and goes on once that one released it. Another destination does not count.
func TestAcquireWaitsForTotalsToAgree(t *testing.T) {
	ctx := t.Context()
	client := fake.NewClientset()
	other := testOptions("elsewhere", Shard{Index: 0, Total: 5})
	other.Destination = "s3://another/bucket"
	elsewhere := startAcquire(ctx, client, other)
	elsewhere.wait(t)
	defer elsewhere.release()

	old := startAcquire(ctx, client, testOptions("old-0", Shard{Index: 0, Total: 2}))
	old.wait(t)
	next := startAcquire(ctx, client, testOptions("new-2", Shard{Index: 2, Total: 3}))
	next.waitSaid(t, "disagree on --total-shards: this run has 3, "+LeaseName(testDest, 0)+" (held by old-0) has 2")
	time.Sleep(2 * other.LeaseDuration)
	select {
	case <-next.done:
		t.Fatalf("shard 2/3 acquired while shard 0/2 holds its lease (err %v)", next.err)
	default:
	}
	// It waits without a lease of its own: nothing of it to expire or release.
	if _, err := client.CoordinationV1().Leases(testNS).Get(ctx, LeaseName(testDest, 2), metav1.GetOptions{}); err == nil {
		t.Fatal("the waiting replica holds its lease")
	}
	old.release()
	next.wait(t)
	defer next.release()
	if got := next.waiting.all(); len(got) != 1 {
		t.Fatalf("said %d things, want once: %q", len(got), got)
	}
}

// Two processes of different counts that start at once: never both hold, whichever order the
// API server sees them in; once the first lets go, the other goes on.
func TestAcquireDisagreeingRaceNeverBothHold(t *testing.T) {
	for round := range 8 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			ctx := t.Context()
			client := fake.NewClientset()
			var holding atomic.Int32
			var wg sync.WaitGroup
			errs := make(chan error, 2)
			for i, s := range []Shard{{Index: 0, Total: 2}, {Index: 2, Total: 3}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					o := testOptions(fmt.Sprintf("p%d", i), s)
					held, release, err := Acquire(ctx, client, o)
					if err != nil {
						errs <- err
						return
					}
					if n := holding.Add(1); n != 1 {
						errs <- fmt.Errorf("%s holds while %d others do", s, n-1)
					}
					select {
					case <-held.Done():
						errs <- fmt.Errorf("%s: lost %v", s, context.Cause(held))
					case <-time.After(200 * time.Millisecond):
					}
					holding.Add(-1)
					release()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// A holder that can no longer renew (the API server unreachable, or refusing) stops writing:
// held is cancelled with ErrLost once the renew deadline has passed.
func TestHeldEndsWhenTheLeaseIsLost(t *testing.T) {
	client := fake.NewClientset()
	// Reactors are added before the client is used: the fake does not guard them.
	var refuse, refused atomic.Bool
	client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if !refuse.Load() {
			return false, nil, nil
		}
		refused.Store(true)
		return true, nil, errors.New("connection refused")
	})
	o := testOptions("holder", Shard{Index: 1, Total: 2})
	a := startAcquire(t.Context(), client, o)
	a.wait(t)
	defer a.release()
	refuse.Store(true)
	select {
	case <-a.held.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("held still live although no renewal succeeds")
	}
	if !refused.Load() {
		t.Fatal("held ended before a renewal failed")
	}
	if cause := context.Cause(a.held); !errors.Is(cause, ErrLost) || !strings.Contains(cause.Error(), "for shard 1/2") {
		t.Fatalf("cause %v, want ErrLost", cause)
	}
}

// Acquire gives up when its context ends while it waits.
func TestAcquireCancelledWhileWaiting(t *testing.T) {
	client := fake.NewClientset()
	s := Shard{Index: 0, Total: 2}
	first := startAcquire(t.Context(), client, testOptions("first", s))
	first.wait(t)
	defer first.release()
	ctx, cancel := context.WithCancel(t.Context())
	second := startAcquire(ctx, client, testOptions("second", s))
	second.waitSaid(t, "is held by first")
	cancel()
	<-second.done
	if !errors.Is(second.err, context.Canceled) {
		t.Fatalf("err %v, want canceled", second.err)
	}
}

func TestLeaseName(t *testing.T) {
	a, b := LeaseName("/data/logs", 0), LeaseName("/data/logs", 1)
	c := LeaseName("s3://bucket/prefix", 0)
	if a == b || a == c || !strings.HasPrefix(a, "logexport-") || !strings.HasSuffix(b, "-1") {
		t.Fatalf("names %q %q %q", a, b, c)
	}
	// Pinned: a lease name that changed with a release would let two versions write one shard.
	if a != "logexport-"+DestinationID("/data/logs")+"-0" || len(DestinationID("x")) != 16 {
		t.Fatalf("name %q", a)
	}
}
