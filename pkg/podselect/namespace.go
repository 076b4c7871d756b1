package podselect

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// NamespaceState is what the API server told of a namespace.
type NamespaceState int

const (
	// NamespaceUnknown: the caller may neither get nor list namespaces. A 403 says nothing of
	// whether the namespace exists, so it is never taken for "missing".
	NamespaceUnknown NamespaceState = iota
	NamespaceExists
	NamespaceMissing
)

func (s NamespaceState) String() string {
	switch s {
	case NamespaceExists:
		return "exists"
	case NamespaceMissing:
		return "missing"
	}
	return "unknown"
}

// CheckNamespace tells whether a namespace exists. It asks with get, then with a list narrowed to
// the name: the cluster-wide deploy RBAC grants list on namespaces but not get. Authorization
// comes before the lookup, so a NotFound (or an empty list) is proof that it does not exist.
func CheckNamespace(ctx context.Context, client kubernetes.Interface, name string) (NamespaceState, error) {
	_, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return NamespaceExists, nil
	case apierrors.IsNotFound(err):
		return NamespaceMissing, nil
	case !apierrors.IsForbidden(err):
		return NamespaceUnknown, fmt.Errorf("getting namespace %s: %w", name, err)
	}
	list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
	})
	switch {
	case apierrors.IsForbidden(err):
		return NamespaceUnknown, nil
	case err != nil:
		return NamespaceUnknown, fmt.Errorf("listing namespace %s: %w", name, err)
	}
	for _, n := range list.Items {
		// The fake clientset ignores field selectors; a real server applies it.
		if n.Name == name {
			return NamespaceExists, nil
		}
	}
	return NamespaceMissing, nil
}
