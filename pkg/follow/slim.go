package follow

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/logexport/kubectl-logexport/pkg/target"
)

// slimPod is the informers' transform: the cache keeps of each pod only what the follower reads
// (its names, UID, labels and creation time, its containers' names, their statuses reduced by
// target.ReduceStatus), so that following tens of thousands of pods does not hold their managed
// fields, annotations, specs and images. The resource version stays for the informer's own use.
// Anything else (a tombstone) is passed on as it is. It returns a new pod, so slimming a slim pod
// gives the same.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, CreationTimestamp: p.CreationTimestamp},
		Spec: corev1.PodSpec{
			InitContainers: names(p.Spec.InitContainers),
			Containers:     names(p.Spec.Containers),
		},
		Status: corev1.PodStatus{
			InitContainerStatuses:      statuses(p.Status.InitContainerStatuses),
			ContainerStatuses:          statuses(p.Status.ContainerStatuses),
			EphemeralContainerStatuses: statuses(p.Status.EphemeralContainerStatuses),
		},
	}
	if len(p.Spec.EphemeralContainers) > 0 {
		out.Spec.EphemeralContainers = make([]corev1.EphemeralContainer, len(p.Spec.EphemeralContainers))
		for i, c := range p.Spec.EphemeralContainers {
			out.Spec.EphemeralContainers[i].Name = c.Name
		}
	}
	return out, nil
}

func names(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i].Name = c.Name
	}
	return out
}

func statuses(sts []corev1.ContainerStatus) []corev1.ContainerStatus {
	if len(sts) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(sts))
	for i := range sts {
		out[i] = target.ReduceStatus(&sts[i])
	}
	return out
}
