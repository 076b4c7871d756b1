package target

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeTimes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(sec int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(sec) * time.Second)) }
	ptr := func(t metav1.Time) *metav1.Time { return &t }
	pod := func(node string, start *metav1.Time, statuses ...corev1.ContainerStatus) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{StartTime: start, ContainerStatuses: statuses}}
	}
	in := func(ns string, p corev1.Pod) corev1.Pod { p.Namespace = ns; return p }
	running := func(start int) corev1.ContainerStatus {
		return corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(start)}}}
	}
	restarted := func(start, lastStart, lastFinish int) corev1.ContainerStatus {
		st := running(start)
		st.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{StartedAt: at(lastStart), FinishedAt: at(lastFinish)}
		return st
	}
	terminated := func(start, finish int) corev1.ContainerStatus {
		return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{StartedAt: at(start), FinishedAt: at(finish)}}}
	}
	ready := func(p corev1.Pod, sec int) corev1.Pod {
		// Conditions come from several components and clocks: never counted.
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, LastTransitionTime: at(sec)}}
		return p
	}
	tests := []struct {
		name string
		pods []corev1.Pod
		// want is the time for a pod in namespace "ns" on each node.
		want map[string]time.Time
	}{
		{name: "no pods", want: map[string]time.Time{}},
		{name: "unscheduled pod", pods: []corev1.Pod{pod("", ptr(at(5)), running(6))}, want: map[string]time.Time{}},
		{name: "pod start only", pods: []corev1.Pod{pod("n1", ptr(at(5)))}, want: map[string]time.Time{"n1": at(5).Time}},
		{
			name: "newest of starts and finishes, per node",
			pods: []corev1.Pod{
				pod("n1", ptr(at(1)), running(2)),
				pod("n1", ptr(at(3)), restarted(40, 10, 39)),
				pod("n2", ptr(at(1)), terminated(7, 90)),
				ready(pod("n2", ptr(at(1))), 500),
			},
			want: map[string]time.Time{"n1": at(40).Time, "n2": at(90).Time},
		},
		{
			// Namespaces may be listed one after the other: another's later list says nothing of
			// the node's clock when this one was listed.
			name: "per namespace",
			pods: []corev1.Pod{pod("n1", ptr(at(1)), running(2)), in("later", pod("n1", ptr(at(300)), running(301)))},
			want: map[string]time.Time{"n1": at(2).Time},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewNodeTimes(tt.pods)
			for _, n := range []string{"", "n1", "n2"} {
				p := pod(n, nil)
				if w := tt.want[n]; !got.Of(&p).Equal(w) {
					t.Errorf("node %q: %v, want %v", n, got.Of(&p), w)
				}
			}
		})
	}
}
