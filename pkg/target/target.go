// Package target names what is exported: one container of one pod, with the status the selection
// saw. Selection produces targets and the merge consumes them; neither depends on the other.
package target

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Target is one container of one pod.
type Target struct {
	Namespace string
	Pod       string
	PodUID    string
	Container string
	// Status is the container's status in the pod; nil when the kubelet has not reported it yet.
	Status *corev1.ContainerStatus
	// NodeTime is a time the clock of the pod's node had passed before the pod was listed (see
	// NodeTimes); zero if unknown.
	NodeTime time.Time
}

// Key is "namespace/pod/container", unique within a cluster at one time.
func (t Target) Key() string { return t.Namespace + "/" + t.Pod + "/" + t.Container }

// StatusOf returns the status of a pod's container (init, regular or ephemeral), nil if the
// kubelet has not reported it.
func StatusOf(pod *corev1.Pod, container string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == container {
				return &list[i]
			}
		}
	}
	return nil
}

// Of returns the target of one container of a pod.
func Of(pod *corev1.Pod, container string) Target {
	return Target{Namespace: pod.Namespace, Pod: pod.Name, PodUID: string(pod.UID), Container: container, Status: StatusOf(pod, container)}
}

// NodeTimes holds, for the pods of one namespace on one node, the newest time the node's kubelet
// and runtime reported in any of them: the pod's start and its containers' start and finish.
// They come from the node's clock, so when the pods were listed that clock had passed it; a
// container that starts after the list cannot log a line older than that. The pods of one
// namespace were listed at one moment, those of another may have been listed later (namespace by
// namespace, without the right to list them all): a time is used only for its namespace's pods.
// Conditions are left out: other components set some of them, by other clocks.
type NodeTimes map[nodeKey]time.Time

type nodeKey struct{ namespace, node string }

// NewNodeTimes returns the node times of pods listed together.
func NewNodeTimes(pods []corev1.Pod) NodeTimes {
	out := NodeTimes{}
	for i := range pods {
		p := &pods[i]
		if p.Spec.NodeName == "" {
			continue
		}
		k := nodeKey{p.Namespace, p.Spec.NodeName}
		newest := out[k]
		seen := func(t metav1.Time) {
			if t.After(newest) {
				newest = t.Time
			}
		}
		if p.Status.StartTime != nil {
			seen(*p.Status.StartTime)
		}
		for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses} {
			for _, st := range list {
				for _, s := range []corev1.ContainerState{st.State, st.LastTerminationState} {
					if s.Running != nil {
						seen(s.Running.StartedAt)
					}
					if s.Terminated != nil {
						seen(s.Terminated.StartedAt)
						seen(s.Terminated.FinishedAt)
					}
				}
			}
		}
		if !newest.IsZero() {
			out[k] = newest
		}
	}
	return out
}

// Of returns the node time for a pod listed with the others (zero if unknown).
func (n NodeTimes) Of(pod *corev1.Pod) time.Time {
	return n[nodeKey{pod.Namespace, pod.Spec.NodeName}]
}
