package follow

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
)

// informerOf is one informer: the pods of a selection in one namespace (or in all).
type informerOf struct {
	sel       int
	namespace string
}

// selections returns what is followed: Selections, or Scope and Selector as one selection.
func (f *Follower) selections() []podselect.Selection {
	if len(f.Selections) > 0 {
		return f.Selections
	}
	return []podselect.Selection{{Scope: f.Scope, Selector: f.Selector}}
}

// watches returns the informers to run, and the namespaces that may not be read. With one
// selection a namespace it names that cannot be read is an error; with several, it is reported
// and the others are followed, as one-shot runs do (podselect.Select).
func (f *Follower) watches(ctx context.Context) ([]informerOf, []podselect.NamespaceError, error) {
	sels := f.selections()
	var out []informerOf
	var failed []podselect.NamespaceError
	seen := map[string]bool{}
	for i, s := range sels {
		namespaces, nsErrs, err := f.namespaces(ctx, s.Scope)
		if err != nil {
			if len(sels) == 1 || s.Scope.AllNamespaces || ctx.Err() != nil {
				return nil, nil, err
			}
			nsErrs = []podselect.NamespaceError{{Namespace: s.Scope.Namespace, Err: err}}
		}
		for _, e := range nsErrs {
			if !seen[e.Namespace] {
				seen[e.Namespace] = true
				failed = append(failed, e)
			}
		}
		for _, ns := range namespaces {
			out = append(out, informerOf{sel: i, namespace: ns})
		}
	}
	return out, failed, nil
}

// labelSelectors parses the selections' label selectors, to tell a pod that no longer matches.
func labelSelectors(sels []podselect.Selection) ([]labels.Selector, error) {
	out := make([]labels.Selector, len(sels))
	for i, s := range sels {
		sel, err := labels.Parse(s.Scope.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("invalid label selector %q: %w", s.Scope.LabelSelector, err)
		}
		out[i] = sel
	}
	return out, nil
}
