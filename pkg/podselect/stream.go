package podselect

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/logexport/kubectl-logexport/pkg/target"
)

// Stream lists the pods of one selection page by page and calls fn with each selected container
// as its page is read: a run that exports them as they come holds a page of pods (and one read
// ahead), not all of a cluster's. fn may block, and the next page waits for it; it returns false
// to stop the listing. The containers come in the order the API server lists the pods, by their
// storage keys (namespace/name), not sorted as Select sorts them; each with the newest time its
// node reported in the pods of its namespace listed so far (target.NodeTimes: a time the node's
// clock had passed before the pod was listed, as it was before those after it).
//
// Waiting on fn can outlast the list's continue token (the API server compacts what it was
// taken at): the listing then starts again, and the pods that came before are skipped by their
// keys, in the order the API server lists them (maxStalled times in a row without a new pod).
//
// A pod listed again within a page or two (a page served twice) is passed once, as Select
// passes it once.
//
// With AllNamespaces and no right to list pods cluster-wide, it lists namespace by namespace and
// returns the ones it may not read, as List does.
func Stream(ctx context.Context, client kubernetes.Interface, s Selection, fn func(target.Target) bool) ([]NamespaceError, error) {
	nodeTimes := target.NodeTimes{}
	stopped, passed := false, false
	each := func(p *target.Pod) bool {
		passed = true
		nodeTimes.Add(p)
		for _, t := range targetsOf(p, s.Selector.MatchContainer) {
			t.NodeTime = nodeTimes.Of(p)
			if !fn(t) {
				stopped = true
				return false
			}
		}
		return true
	}
	ns := s.Scope.Namespace
	if s.Scope.AllNamespaces {
		ns = metav1.NamespaceAll
	}
	err := streamIn(ctx, client, ns, s.Scope, s.Selector, each)
	// Refused once pods were passed (a later page), the listing is not made again namespace by
	// namespace, which would pass them again.
	if err == nil || stopped || passed || !s.Scope.AllNamespaces || !apierrors.IsForbidden(err) {
		if err != nil && !stopped {
			return nil, listError(ns, err)
		}
		return nil, nil
	}
	return byNamespace(ctx, client, err, func(ns string) error {
		err := streamIn(ctx, client, ns, s.Scope, s.Selector, each)
		if stopped {
			return errStopped
		}
		return err
	})
}

// maxStalled is how many listings in a row may expire before passing a new pod: going over the
// pods passed already is quick, so a listing that cannot get past them will not.
const maxStalled = 3

// streamIn lists the pods of ns that sel selects page by page into fn, until fn returns false,
// starting the listing again when its continue token expired.
func streamIn(ctx context.Context, client kubernetes.Interface, ns string, scope Scope, sel Selector, fn func(*target.Pod) bool) error {
	opts := metav1.ListOptions{LabelSelector: scope.LabelSelector, FieldSelector: scope.FieldSelector}
	var last string // the key of the last pod listed, "" before the first
	stalled := 0    // listings in a row that expired before they passed a new pod
	recent := newRecentKeys(2 * int(scope.chunkSize()))
	for {
		after := last
		stop := false
		err := eachPod(ctx, client, ns, scope.chunkSize(), opts, func(pod *corev1.Pod) bool {
			k := pod.Namespace + "/" + pod.Name
			if after != "" && k <= after || !recent.add(k) {
				return true // listed before the token expired, or just now
			}
			last = k
			if sel.Selects(pod.Namespace, pod.Name) {
				p := target.PodOf(pod)
				stop = !fn(&p)
			}
			return !stop
		})
		if stop {
			return nil
		}
		if apierrors.IsResourceExpired(err) {
			stalled++
			if last != after {
				stalled = 0
			}
			if stalled < maxStalled {
				klog.V(1).InfoS("the pod list expired while its pods were exported; listing again after the last one", "namespace", ns, "after", last, "err", err)
				continue
			}
		}
		return err
	}
}

// recentKeys are the keys of the last pods listed, at most max of them (all if max is 0).
type recentKeys struct {
	max  int
	keys map[string]bool
	ring []string
	next int
}

func newRecentKeys(max int) *recentKeys {
	return &recentKeys{max: max, keys: map[string]bool{}}
}

// add adds k and tells whether it was not among them.
func (r *recentKeys) add(k string) bool {
	if r.keys[k] {
		return false
	}
	r.keys[k] = true
	switch {
	case r.max == 0:
	case len(r.ring) < r.max:
		r.ring = append(r.ring, k)
	default:
		delete(r.keys, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % r.max
	}
	return true
}
