package podselect

import (
	"context"
	"slices"
	"sort"

	"k8s.io/client-go/kubernetes"

	"github.com/logexport/kubectl-logexport/pkg/target"
)

// Selection is one part of what a run exports: where to list pods and which of their pods and
// containers to take. The flags make one; a configuration file may make several.
type Selection struct {
	Scope    Scope
	Selector Selector
}

// And returns a selector that selects a pod or container only when both s and o select it.
func (s Selector) And(o Selector) Selector {
	s.also = append(slices.Clip(s.also), o)
	return s
}

// Empty tells whether s selects every pod and container.
func (s Selector) Empty() bool {
	return len(s.Pods)+len(s.ExcludePods)+len(s.Containers)+len(s.ExcludeContainers)+len(s.also) == 0 && !s.Shard.Enabled()
}

// Narrow returns what both s and n select, and false when they cannot both select anything: n in
// another namespace than s. Label and field selectors are joined (both must hold), and so are the
// name patterns.
func (s Selection) Narrow(n Selection) (Selection, bool) {
	switch {
	case n.Scope.AllNamespaces:
	case s.Scope.AllNamespaces:
		s.Scope.AllNamespaces, s.Scope.Namespace = false, n.Scope.Namespace
	case s.Scope.Namespace != n.Scope.Namespace:
		return Selection{}, false
	}
	s.Scope.LabelSelector = joinSelectors(s.Scope.LabelSelector, n.Scope.LabelSelector)
	s.Scope.FieldSelector = joinSelectors(s.Scope.FieldSelector, n.Scope.FieldSelector)
	if !n.Selector.Empty() {
		s.Selector = s.Selector.And(n.Selector)
	}
	return s, true
}

// joinSelectors joins two label or field selectors into one that requires both: their
// requirements are ANDed when separated by a comma.
func joinSelectors(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "," + b
}

// Select lists the pods of each selection and returns their selected containers in one list,
// each container once (a pod that two selections match is exported once, with the containers
// either selects), sorted by namespace and pod, a pod's containers in the order they run.
//
// With one selection, a namespace whose pods may not be listed is an error, as for kubectl get.
// With several, it is reported among the failed namespaces and the other selections are still
// exported, as a namespace that cannot be read is with --all-namespaces.
func Select(ctx context.Context, client kubernetes.Interface, sels []Selection) ([]target.Target, []NamespaceError, error) {
	// Per pod, no more is held than its listed form and an index: a run may list tens of
	// thousands (test/bench, workload e).
	type selected struct {
		pod      *target.Pod
		nodeTime target.NodeTimes
		// sel is the first selection that matched the pod, more any others (indexes into sels).
		sel  int
		more []int
	}
	var order []selected
	var index map[string]int // of order, by namespace/name, once a second selection is listed
	var failed []NamespaceError
	failedNS := map[string]bool{}
	for si, sel := range sels {
		listed, nsErrs, err := List(ctx, client, sel.Scope, sel.Selector)
		if err != nil {
			if len(sels) == 1 || sel.Scope.AllNamespaces || ctx.Err() != nil {
				return nil, nil, err
			}
			nsErrs = []NamespaceError{{Namespace: sel.Scope.Namespace, Err: err}}
		}
		for _, e := range nsErrs {
			if !failedNS[e.Namespace] {
				failedNS[e.Namespace] = true
				failed = append(failed, e)
			}
		}
		// Node times hold only for the pods listed together (see target.NodeTimes): a pod that
		// an earlier list returned keeps that list's times.
		nodeTimes := target.NewNodeTimes(listed)
		if si == 0 {
			order = make([]selected, 0, len(listed))
		}
		if si == 1 {
			index = make(map[string]int, len(order))
			for i, s := range order {
				index[s.pod.Namespace+"/"+s.pod.Name] = i
			}
		}
		for i := range listed {
			p := &listed[i]
			if i > 0 && listed[i-1].Namespace == p.Namespace && listed[i-1].Name == p.Name {
				// Listed twice (sorted, so next to each other): the same pod.
				continue
			}
			if index != nil {
				k := p.Namespace + "/" + p.Name
				if j, ok := index[k]; ok {
					order[j].more = append(order[j].more, si)
					continue
				}
				index[k] = len(order)
			}
			order = append(order, selected{pod: p, nodeTime: nodeTimes, sel: si})
		}
	}
	if len(sels) > 1 {
		// One selection's pods are listed sorted; several selections' are merged.
		sort.Slice(order, func(i, j int) bool {
			a, b := order[i].pod, order[j].pod
			if a.Namespace != b.Namespace {
				return a.Namespace < b.Namespace
			}
			return a.Name < b.Name
		})
	}
	matches := func(s *selected) func(string) bool {
		return func(c string) bool {
			if sels[s.sel].Selector.MatchContainer(c) {
				return true
			}
			for _, i := range s.more {
				if sels[i].Selector.MatchContainer(c) {
					return true
				}
			}
			return false
		}
	}
	n := 0
	for i := range order {
		n += countTargets(order[i].pod, matches(&order[i]))
	}
	out := make([]target.Target, 0, n)
	for i := range order {
		s := &order[i]
		start := len(out)
		out = appendTargets(out, s.pod, matches(s))
		for j := start; j < len(out); j++ {
			out[j].NodeTime = s.nodeTime.Of(s.pod)
		}
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Namespace < failed[j].Namespace })
	return out, failed, nil
}

// countTargets is how many containers of pod match.
func countTargets(pod *target.Pod, match func(string) bool) int {
	n := 0
	for _, c := range pod.Containers {
		if match(c) {
			n++
		}
	}
	return n
}

// appendTargets appends the containers of pod that match to out, as targetsOf returns them.
func appendTargets(out []target.Target, pod *target.Pod, match func(string) bool) []target.Target {
	for _, c := range pod.Containers {
		if match(c) {
			out = append(out, pod.Target(c))
		}
	}
	return out
}

// targetsOf returns the containers of a pod that match, in the order they run: init, regular,
// ephemeral.
func targetsOf(pod *target.Pod, match func(string) bool) []target.Target {
	return appendTargets(nil, pod, match)
}
