package target

import (
	"encoding/json"
	"reflect"
	"strings"

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
			var listed []Packed
			for i := range tt.pods {
				p := PodOf(&tt.pods[i])
				listed = append(listed, p.Pack())
			}
			got := NewNodeTimes(listed)
			for _, n := range []string{"", "n1", "n2"} {
				p := pod(n, nil)
				tp := PodOf(&p)
				if w := tt.want[n]; !got.Of(&tp).Equal(w) {
					t.Errorf("node %q: %v, want %v", n, got.Of(&tp), w)
				}
			}
		})
	}
}

// PodOf keeps what selection and the merge read and nothing that grows with what a pod carries
// besides (managed fields, annotations, the spec, images, termination messages).
func TestPodOf(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))
	later := metav1.NewTime(at.Add(time.Minute))
	started := true
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1", Labels: map[string]string{"a": "b"},
			Annotations:   map[string]string{"big": strings.Repeat("x", 1000)},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.PodSpec{
			NodeName:            "n1",
			InitContainers:      []corev1.Container{{Name: "init", Image: "i", Env: []corev1.EnvVar{{Name: "E"}}}},
			Containers:          []corev1.Container{{Name: "app", Image: "i"}, {Name: "side", Image: "i"}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}},
		},
		Status: corev1.PodStatus{
			StartTime: &at,
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", ContainerID: "c://i", Image: "img", ImageID: "sha",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
					Message: strings.Repeat("m", 4096), StartedAt: at, FinishedAt: later, ContainerID: "c://i"}}}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", ContainerID: "c://2", RestartCount: 1, Ready: true, Started: &started, Image: "img",
					VolumeMounts: []corev1.VolumeMountStatus{{Name: "v"}},
					State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1,
						Reason: "Error", Message: "boom", StartedAt: at, FinishedAt: at, ContainerID: "c://1"}}},
				{Name: "side", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off"}}},
			},
		},
	}
	want := Pod{Namespace: "ns", Name: "p", UID: "u1", Node: "n1", Containers: []string{"init", "app", "side", "debug"},
		Statuses: []corev1.ContainerStatus{
			{Name: "init", ContainerID: "c://i", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				Reason: "Completed", StartedAt: at, FinishedAt: later, ContainerID: "c://i"}}},
			{Name: "app", ContainerID: "c://2", RestartCount: 1, Ready: true, Started: &started,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1,
					Reason: "Error", StartedAt: at, FinishedAt: at, ContainerID: "c://1"}}},
			{Name: "side", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}},
		},
		reported: later.Time,
	}
	got := PodOf(full)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PodOf:\n got %s\nwant %s", dump(got), dump(want))
	}
	// What the merge resolves instances from is what target.Of gives from the full pod.
	for _, c := range got.Containers {
		a, b := got.Target(c), Of(full, c)
		if (a.Status == nil) != (b.Status == nil) {
			t.Fatalf("%s: status %v vs %v", c, a.Status, b.Status)
		}
		b.Status = nil
		a.Status = nil
		if a != b {
			t.Errorf("%s: %+v, want %+v", c, a, b)
		}
	}
	// Nothing is shared: a change to the listed pod (the next page decoded into it) leaves it.
	full.Status.ContainerStatuses[0].State.Running.StartedAt = later
	*full.Status.ContainerStatuses[0].Started = false
	if !got.Status("app").State.Running.StartedAt.Equal(&at) || !*got.Status("app").Started {
		t.Fatal("PodOf shares the status with the listed pod")
	}
}

func dump(p Pod) string {
	b, _ := json.Marshal(struct {
		Pod
		Reported time.Time
	}{p, p.reported})
	return string(b)
}
