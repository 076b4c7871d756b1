package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

var errNoNamespace = errors.New("does not exist")

// noMatch tells what kubectl get tells: on stderr, that nothing was selected. A namespace named
// by the selections that yielded nothing is looked up: when the API server says it does not
// exist, a run that selected nothing fails (a CronJob with a typo in -n would otherwise succeed,
// exporting nothing, forever), and a run that selected something elsewhere reports it among the
// namespaces that could not be read (exported the rest, exit 1).
func (o *Options) noMatch(ctx context.Context, client kubernetes.Interface, targets *target.List, nsErrs []podselect.NamespaceError) ([]podselect.NamespaceError, error) {
	seen := map[string]bool{}
	for i := range targets.Len() {
		seen[targets.Namespace(i)] = true
	}
	for _, e := range nsErrs {
		seen[e.Namespace] = true
	}
	var missing []string
	for _, ns := range o.namedNamespaces() {
		if !seen[ns] && o.namespaceMissing(ctx, client, ns) {
			missing = append(missing, ns)
		}
	}
	if targets.Len() > 0 {
		for _, ns := range missing {
			nsErrs = append(nsErrs, podselect.NamespaceError{Namespace: ns, Err: errNoNamespace})
		}
		return nsErrs, nil
	}
	if len(missing) > 0 {
		return nsErrs, missingError(missing)
	}
	what := "pods"
	if o.filtersContainers() {
		// The pods may have matched and their containers not: which, the selection does not say.
		what = "containers"
	}
	fmt.Fprintf(o.ErrOut, "No %s matched %s%s.\n", what, o.where(nsErrs), o.shardNote())
	return nsErrs, nil
}

// namespacesExist fails when the API server says that a namespace the selections name does not
// exist.
func (o *Options) namespacesExist(ctx context.Context, client kubernetes.Interface) error {
	var missing []string
	for _, ns := range o.namedNamespaces() {
		if o.namespaceMissing(ctx, client, ns) {
			missing = append(missing, ns)
		}
	}
	if len(missing) > 0 {
		return missingError(missing)
	}
	return nil
}

func missingError(missing []string) error {
	if len(missing) == 1 {
		return fmt.Errorf("namespace %s does not exist", missing[0])
	}
	return fmt.Errorf("namespaces %s do not exist", strings.Join(missing, ", "))
}

// namespaceMissing is true only when the API server said so: without the right to get or list
// namespaces (a namespaced Role) nothing is known, and nothing is claimed.
func (o *Options) namespaceMissing(ctx context.Context, client kubernetes.Interface, ns string) bool {
	state, err := podselect.CheckNamespace(ctx, client, ns)
	if err != nil {
		klog.V(1).InfoS("could not check whether the namespace exists", "namespace", ns, "err", err)
	}
	klog.V(2).InfoS("namespace looked up", "namespace", ns, "state", state)
	return state == podselect.NamespaceMissing
}

// namedNamespaces are the namespaces the selections name, sorted: not those --all-namespaces
// (or a selection for every namespace) reaches.
func (o *Options) namedNamespaces() []string {
	var out []string
	for _, s := range o.selections {
		if !s.Scope.AllNamespaces && !slices.Contains(out, s.Scope.Namespace) {
			out = append(out, s.Scope.Namespace)
		}
	}
	slices.Sort(out)
	return out
}

func (o *Options) where(nsErrs []podselect.NamespaceError) string {
	for _, s := range o.selections {
		if s.Scope.AllNamespaces {
			if len(nsErrs) > 0 {
				return "in the namespaces that could be read"
			}
			return "in any namespace"
		}
	}
	names := o.namedNamespaces()
	if len(names) == 1 {
		return "in namespace " + names[0]
	}
	return "in namespaces " + strings.Join(names, ", ")
}

func (o *Options) filtersContainers() bool {
	if len(o.Containers)+len(o.ExcludeContainers) > 0 {
		return true
	}
	for _, s := range o.selections {
		if len(s.Selector.Containers)+len(s.Selector.ExcludeContainers) > 0 {
			return true
		}
	}
	return false
}
