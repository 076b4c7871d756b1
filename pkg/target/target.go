// Package target names what is exported: one container of one pod, with the status the selection
// saw. Selection produces targets and the merge consumes them; neither depends on the other.
package target

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/logexport/kubectl-logexport/pkg/compact"
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

// Pod is what selection and the merge read of a listed pod: its names, its containers' names in
// the order they run, their statuses reduced to what decides which instance to read (ReduceStatus),
// and the newest time its node reported. A listed pod holds far more (its spec, managed fields,
// annotations): a selection of tens of thousands of pods keeps this instead, so that the full
// objects go with the page they came in.
type Pod struct {
	Namespace, Name, UID string
	// Node is the node the pod is scheduled to, "" if none.
	Node string
	// Containers are the names of its init, regular and ephemeral containers, in that order.
	Containers []string
	// Statuses are the reported statuses of its containers, reduced (ReduceStatus). A name is
	// unique among all the containers of a pod.
	Statuses []corev1.ContainerStatus
	// reported is the newest time the node's kubelet reported in the pod (see NodeTimes).
	reported time.Time
}

// PodOf returns what is kept of a pod. It shares nothing with pod but its strings.
func PodOf(pod *corev1.Pod) Pod {
	p := Pod{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), Node: pod.Spec.NodeName}
	p.Containers = make([]string, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers)+len(pod.Spec.EphemeralContainers))
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			p.Containers = append(p.Containers, c.Name)
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		p.Containers = append(p.Containers, c.Name)
	}
	statuses := [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses}
	p.Statuses = make([]corev1.ContainerStatus, 0, len(statuses[0])+len(statuses[1])+len(statuses[2]))
	for _, list := range statuses {
		for i := range list {
			p.Statuses = append(p.Statuses, ReduceStatus(&list[i]))
		}
	}
	p.reported = reported(pod)
	return p
}

// Status returns the status of one of the pod's containers, nil if the kubelet has not reported it.
func (p *Pod) Status(container string) *corev1.ContainerStatus {
	for i := range p.Statuses {
		if p.Statuses[i].Name == container {
			return &p.Statuses[i]
		}
	}
	return nil
}

// Target returns the target of one of the pod's containers (NodeTime unset).
func (p *Pod) Target(container string) Target {
	return Target{Namespace: p.Namespace, Pod: p.Name, PodUID: p.UID, Container: container, Status: p.Status(container)}
}

// ReduceStatus returns what selection, the merge and the follower read of a container's status:
// its name, container ID, restart count, readiness, state and last state, the states without
// their messages (a termination message may be 4 KiB). The image, resources and volume mounts
// are left out. Pointers are copied, so nothing of st is kept but its strings.
func ReduceStatus(st *corev1.ContainerStatus) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name:                 st.Name,
		ContainerID:          st.ContainerID,
		RestartCount:         st.RestartCount,
		Ready:                st.Ready,
		Started:              copyPtr(st.Started),
		State:                reduceState(st.State),
		LastTerminationState: reduceState(st.LastTerminationState),
	}
}

func reduceState(s corev1.ContainerState) corev1.ContainerState {
	var out corev1.ContainerState
	if s.Waiting != nil {
		out.Waiting = &corev1.ContainerStateWaiting{Reason: s.Waiting.Reason}
	}
	if s.Running != nil {
		out.Running = &corev1.ContainerStateRunning{StartedAt: s.Running.StartedAt}
	}
	if t := s.Terminated; t != nil {
		out.Terminated = &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Signal: t.Signal, Reason: t.Reason,
			StartedAt: t.StartedAt, FinishedAt: t.FinishedAt, ContainerID: t.ContainerID}
	}
	return out
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
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
func NewNodeTimes(pods []Packed) NodeTimes {
	out := NodeTimes{}
	for _, p := range pods {
		r := compact.NewReader(string(p))
		ns := r.String()
		r.SkipString()
		r.SkipToken()
		node := r.String()
		out.add(ns, node, r.Time())
	}
	return out
}

// Add counts a pod listed with the others.
func (n NodeTimes) Add(p *Pod) { n.add(p.Namespace, p.Node, p.reported) }

func (n NodeTimes) add(namespace, node string, reported time.Time) {
	if node == "" || reported.IsZero() {
		return
	}
	k := nodeKey{namespace, node}
	if reported.After(n[k]) {
		// Copies: the names may be parts of a packed pod, which the key (replaced at every
		// assignment) would keep for as long as the listing's targets keep the map.
		n[nodeKey{strings.Clone(namespace), strings.Clone(node)}] = reported
	}
}

// reported returns the newest time a pod's node reported in it: the pod's start and its
// containers' start and finish; zero if none.
func reported(p *corev1.Pod) time.Time {
	var newest time.Time
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
	return newest
}

// Of returns the node time for a pod listed with the others (zero if unknown).
func (n NodeTimes) Of(p *Pod) time.Time {
	return n[nodeKey{p.Namespace, p.Node}]
}
