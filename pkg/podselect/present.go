package podselect

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Presence is which pods exist in the namespaces that could be listed completely: with no label or
// field selector and no name pattern, since a pod that a run does not select may still be there.
// Only a complete listing tells that a pod is gone.
type Presence struct {
	// pods holds the pod names of each namespace listed completely.
	pods map[string]map[string]bool
	// all is set after one cluster-wide list: every namespace was listed, also those without
	// pods (or that no longer exist).
	all bool
}

// Complete returns whether a pod of a name exists in ns, and false if ns was not listed
// completely (then nothing may be taken for gone).
func (p *Presence) Complete(ns string) (present func(pod string) bool, ok bool) {
	names, listed := p.pods[ns]
	if !listed && !p.all {
		return nil, false
	}
	return func(pod string) bool { return names[pod] }, true
}

// ListPresence lists the names of every pod of namespaces, or with all of every namespace (one
// cluster-wide list; without the right to it, namespace by namespace), chunk pods per request as
// Scope.ChunkSize says. A namespace that cannot
// be listed is left out and reported, not taken for empty.
func ListPresence(ctx context.Context, client kubernetes.Interface, namespaces []string, all bool, chunk int64) (*Presence, []NamespaceError, error) {
	p := &Presence{pods: map[string]map[string]bool{}}
	if all {
		// Into a map of its own: a list that fails after some pages must leave no namespace
		// looking listed with part of its pods.
		names := map[string]map[string]bool{}
		err := listNames(ctx, client, metav1.NamespaceAll, chunk, names)
		if err == nil {
			p.pods, p.all = names, true
			return p, nil, nil
		}
		if !apierrors.IsForbidden(err) || ctx.Err() != nil {
			return nil, nil, listError(metav1.NamespaceAll, err)
		}
		klog.V(1).InfoS("listing pods in all namespaces is forbidden; listing those kept namespace by namespace", "err", err)
	}
	var failed []NamespaceError
	for _, ns := range namespaces {
		names := map[string]map[string]bool{ns: {}}
		if err := listNames(ctx, client, ns, chunk, names); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			failed = append(failed, NamespaceError{Namespace: ns, Err: fmt.Errorf("listing its pods: %w", err)})
			continue
		}
		p.pods[ns] = names[ns]
	}
	return p, failed, nil
}

func listNames(ctx context.Context, client kubernetes.Interface, ns string, chunk int64, into map[string]map[string]bool) error {
	return eachPod(ctx, client, ns, Scope{ChunkSize: chunk}.chunkSize(), metav1.ListOptions{}, func(pod *corev1.Pod) {
		if into[pod.Namespace] == nil {
			into[pod.Namespace] = map[string]bool{}
		}
		into[pod.Namespace][pod.Name] = true
	})
}
