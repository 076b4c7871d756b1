// Package podselect finds the containers to export: pods listed page by page, narrowed by name
// patterns, and their containers (init and ephemeral ones included) narrowed by container patterns.
package podselect

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
	"k8s.io/klog/v2"

	"github.com/logexport/kubectl-logexport/pkg/shard"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// DefaultChunkSize is the number of pods asked for per list request unless Scope says otherwise,
// as for kubectl get's --chunk-size.
const DefaultChunkSize = 500

// Selector chooses pods and containers. Patterns are Go regular expressions matched anywhere in the
// name (unanchored); no include pattern means every name.
type Selector struct {
	Pods              []*regexp.Regexp
	ExcludePods       []*regexp.Regexp
	Containers        []*regexp.Regexp
	ExcludeContainers []*regexp.Regexp
	// Shard, if enabled, keeps only the pods of one shard (--shard-index of --total-shards).
	Shard shard.Shard
	// also are more selectors that must select a name too (And).
	also []Selector
}

// Compile builds a Selector from pattern strings, naming the pattern that does not compile.
func Compile(pods, excludePods, containers, excludeContainers []string) (Selector, error) {
	var s Selector
	for _, p := range []struct {
		flag string
		in   []string
		out  *[]*regexp.Regexp
	}{
		{"pod", pods, &s.Pods},
		{"--exclude-pod", excludePods, &s.ExcludePods},
		{"--container", containers, &s.Containers},
		{"--exclude-container", excludeContainers, &s.ExcludeContainers},
	} {
		for _, expr := range p.in {
			re, cerr := regexp.Compile(expr)
			if cerr != nil {
				return s, fmt.Errorf("invalid %s pattern %q: %w", p.flag, expr, cerr)
			}
			*p.out = append(*p.out, re)
		}
	}
	return s, nil
}

func match(name string, include, exclude []*regexp.Regexp) bool {
	ok := len(include) == 0
	for _, re := range include {
		if re.MatchString(name) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, re := range exclude {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}

// MatchPod tells whether a pod name is selected.
func (s Selector) MatchPod(name string) bool {
	if !match(name, s.Pods, s.ExcludePods) {
		return false
	}
	for _, a := range s.also {
		if !a.MatchPod(name) {
			return false
		}
	}
	return true
}

// Selects tells whether the pod namespace/name is selected: its name, and its shard.
func (s Selector) Selects(namespace, name string) bool {
	if !s.Shard.Owns(namespace, name) {
		return false
	}
	for _, a := range s.also {
		if !a.Shard.Owns(namespace, name) {
			return false
		}
	}
	return s.MatchPod(name)
}

// MatchContainer tells whether a container name is selected.
func (s Selector) MatchContainer(name string) bool {
	if !match(name, s.Containers, s.ExcludeContainers) {
		return false
	}
	for _, a := range s.also {
		if !a.MatchContainer(name) {
			return false
		}
	}
	return true
}

// ListedTargets returns the selected containers of pods that List returned, each with the time
// its node's clock had passed when its pod was listed (target.NodeTimes).
func (s Selector) ListedTargets(pods []target.Packed) []target.Target {
	var l target.List
	nodeTimes := target.NewNodeTimes(pods)
	for _, p := range pods {
		p.Containers(func(i int, c string) {
			if s.MatchContainer(c) {
				l.Add(p, i, nodeTimes)
			}
		})
	}
	return l.All()
}

// Targets returns the selected containers of a pod in the order they run: init, regular, ephemeral.
func (s Selector) Targets(pod *corev1.Pod) []target.Target {
	p := target.PodOf(pod)
	return targetsOf(&p, s.MatchContainer)
}

// Scope is where to list pods.
type Scope struct {
	// Namespace to list in; ignored with AllNamespaces.
	Namespace     string
	AllNamespaces bool
	LabelSelector string
	FieldSelector string
	// ChunkSize is the number of pods asked for per list request (kubectl's --chunk-size), so
	// that no response holds every pod of a big cluster: DefaultChunkSize if 0, all of them in
	// one request if negative.
	ChunkSize int64
}

func (s Scope) chunkSize() int64 {
	switch {
	case s.ChunkSize == 0:
		return DefaultChunkSize
	case s.ChunkSize < 0:
		return 0
	}
	return s.ChunkSize
}

// NamespaceError is a namespace whose pods could not be listed.
type NamespaceError struct {
	Namespace string
	Err       error
}

func (e NamespaceError) Error() string {
	return fmt.Sprintf("namespace %s: %v", e.Namespace, e.Err)
}

// List returns the selected pods sorted by namespace and name, reduced to what an export reads
// and packed (target.Packed): each page of full pods is let go once it is read. With
// AllNamespaces and no right to list pods cluster-wide, it lists namespace by namespace and
// reports the ones it may not read, so that what is readable is still exported.
func List(ctx context.Context, client kubernetes.Interface, scope Scope, sel Selector) ([]target.Packed, []NamespaceError, error) {
	ns := scope.Namespace
	if scope.AllNamespaces {
		ns = metav1.NamespaceAll
	}
	pods, err := listIn(ctx, client, ns, scope, sel)
	if err == nil || !scope.AllNamespaces || !apierrors.IsForbidden(err) {
		if err != nil {
			return nil, nil, listError(ns, err)
		}
		return pods, nil, nil
	}
	klog.V(1).InfoS("listing pods in all namespaces is forbidden; listing namespace by namespace", "err", err)
	nsList, nerr := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if nerr != nil {
		return nil, nil, fmt.Errorf("listing pods in all namespaces: %w (and listing namespaces: %v)", err, nerr)
	}
	var failed []NamespaceError
	for _, n := range nsList.Items {
		p, err := listIn(ctx, client, n.Name, scope, sel)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			failed = append(failed, NamespaceError{Namespace: n.Name, Err: err})
			continue
		}
		pods = append(pods, p...)
	}
	sortPods(pods)
	return pods, failed, nil
}

func listError(ns string, err error) error {
	if ns == metav1.NamespaceAll {
		return fmt.Errorf("listing pods in all namespaces: %w", err)
	}
	return fmt.Errorf("listing pods in namespace %s: %w", ns, err)
}

func listIn(ctx context.Context, client kubernetes.Interface, ns string, scope Scope, sel Selector) ([]target.Packed, error) {
	var pods []target.Packed
	err := eachPod(ctx, client, ns, scope.chunkSize(), metav1.ListOptions{LabelSelector: scope.LabelSelector, FieldSelector: scope.FieldSelector}, func(pod *corev1.Pod) {
		if sel.Selects(pod.Namespace, pod.Name) {
			p := target.PodOf(pod)
			pods = append(pods, p.Pack())
		}
	})
	if err != nil {
		return nil, err
	}
	sortPods(pods)
	return pods, nil
}

// eachPod lists the pods of ns chunk by chunk (all at once if chunk is 0) and calls fn with each.
// fn must not keep pod: the pager reads a page straight from the list it decoded, and only one
// page is read ahead, so that a cluster's pods are never all held as full objects.
func eachPod(ctx context.Context, client kubernetes.Interface, ns string, chunk int64, opts metav1.ListOptions, fn func(pod *corev1.Pod)) error {
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Pods(ns).List(ctx, opts)
	})
	p.PageSize = chunk
	// The pager reads up to 10 pages ahead by default: 5,000 full pods.
	p.PageBufferSize = 0
	return p.EachListItem(ctx, opts, func(obj runtime.Object) error {
		fn(obj.(*corev1.Pod))
		return nil
	})
}

func sortPods(pods []target.Packed) {
	// The API lists in key order: most listings are sorted already.
	less := func(a, b target.Packed) int {
		ans, an := a.Key()
		bns, bn := b.Key()
		if c := strings.Compare(ans, bns); c != 0 {
			return c
		}
		return strings.Compare(an, bn)
	}
	if !slices.IsSortedFunc(pods, less) {
		slices.SortStableFunc(pods, less)
	}
}
