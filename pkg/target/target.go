// Package target names what is exported: one container of one pod, with the status the selection
// saw. Selection produces targets and the merge consumes them; neither depends on the other.
package target

import corev1 "k8s.io/api/core/v1"

// Target is one container of one pod.
type Target struct {
	Namespace string
	Pod       string
	PodUID    string
	Container string
	// Status is the container's status in the pod; nil when the kubelet has not reported it yet.
	Status *corev1.ContainerStatus
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
