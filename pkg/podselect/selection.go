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
func Select(ctx context.Context, client kubernetes.Interface, sels []Selection) (*target.List, []NamespaceError, error) {
	// Per pod, no more is held than its packed form and an index: a run may list tens of
	// thousands (test/bench, workload e).
	type selected struct {
		pod      target.Packed
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
				ns, name := s.pod.Key()
				index[ns+"/"+name] = i
			}
		}
		for i, p := range listed {
			ns, name := p.Key()
			if i > 0 {
				if pns, pname := listed[i-1].Key(); pns == ns && pname == name {
					// Listed twice (sorted, so next to each other): the same pod.
					continue
				}
			}
			if index != nil {
				k := ns + "/" + name
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
			ans, an := order[i].pod.Key()
			bns, bn := order[j].pod.Key()
			if ans != bns {
				return ans < bns
			}
			return an < bn
		})
	}
	matches := func(s *selected, c string) bool {
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
	out := &target.List{}
	n := 0
	for i := range order {
		order[i].pod.Containers(func(_ int, c string) {
			if matches(&order[i], c) {
				n++
			}
		})
	}
	out.Grow(n)
	for i := range order {
		s := &order[i]
		s.pod.Containers(func(j int, c string) {
			if matches(s, c) {
				out.Add(s.pod, j, s.nodeTime)
			}
		})
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Namespace < failed[j].Namespace })
	return out, failed, nil
}

// targetsOf returns the containers of a pod that match, in the order they run: init, regular,
// ephemeral.
func targetsOf(pod *target.Pod, match func(string) bool) []target.Target {
	var out []target.Target
	for _, c := range pod.Containers {
		if match(c) {
			out = append(out, pod.Target(c))
		}
	}
	return out
}
