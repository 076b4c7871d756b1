package follow

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
)

func TestSlimPod(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))
	started := true
	// full is a pod as an API server sends it, with much that the follower never reads.
	full := func() *corev1.Pod {
		return &corev1.Pod{
			TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-0", UID: "u1", ResourceVersion: "42", Generation: 3,
				CreationTimestamp: at, Labels: map[string]string{"app": "web"},
				Annotations:     map[string]string{"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat("x", 2000)},
				ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubelet", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{}}`)}}},
				OwnerReferences: []metav1.OwnerReference{{Kind: "StatefulSet", Name: "web"}},
				Finalizers:      []string{"f"}},
			Spec: corev1.PodSpec{
				NodeName:       "n1",
				Volumes:        []corev1.Volume{{Name: "v"}},
				InitContainers: []corev1.Container{{Name: "init", Image: "busybox", Command: []string{"sh"}}},
				Containers: []corev1.Container{{Name: "app", Image: "nginx", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}},
				EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}},
			},
			Status: corev1.PodStatus{
				Phase: corev1.PodRunning, PodIP: "10.0.0.1", StartTime: &at,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", ContainerID: "c://i", Image: "busybox", ImageID: "sha",
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", Message: "done",
						StartedAt: at, FinishedAt: at, ContainerID: "c://i"}}}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ContainerID: "c://2", RestartCount: 1, Ready: true, Started: &started,
					Image: "nginx", ImageID: "sha", VolumeMounts: []corev1.VolumeMountStatus{{Name: "v", MountPath: "/v"}},
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error",
						Message: strings.Repeat("m", 4096), StartedAt: at, FinishedAt: at, ContainerID: "c://1"}}}},
				EphemeralContainerStatuses: []corev1.ContainerStatus{{Name: "debug",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: "pulling"}}}},
			},
		}
	}
	slim := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-0", UID: "u1", ResourceVersion: "42", CreationTimestamp: at,
			Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			InitContainers:      []corev1.Container{{Name: "init"}},
			Containers:          []corev1.Container{{Name: "app"}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}},
		},
		Status: corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", ContainerID: "c://i",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: at, FinishedAt: at, ContainerID: "c://i"}}}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ContainerID: "c://2", RestartCount: 1, Ready: true, Started: &started,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error",
					StartedAt: at, FinishedAt: at, ContainerID: "c://1"}}}},
			EphemeralContainerStatuses: []corev1.ContainerStatus{{Name: "debug",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}},
		},
	}
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "new", UID: "u2"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
	tombstone := cache.DeletedFinalStateUnknown{Key: "ns/web-0", Obj: full()}
	tests := []struct {
		name string
		in   any
		want any
	}{
		{name: "a pod keeps what the follower reads", in: full(), want: slim},
		{name: "a slim pod stays as it is", in: slim, want: slim},
		{name: "a pod not started yet", in: bare, want: &corev1.Pod{ObjectMeta: bare.ObjectMeta, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}},
		// The informer passes a tombstone's object as its cache held it: already slim.
		{name: "a tombstone is passed on", in: tombstone, want: tombstone},
		{name: "not a pod", in: "x", want: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := slimPod(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}

	// What the follower does with a pod is the same for the slim one: the label check, the
	// containers it follows and the instance each one's status names.
	p := full()
	s, _ := slimPod(p)
	sp := s.(*corev1.Pod)
	if !labels.SelectorFromSet(labels.Set{"app": "web"}).Matches(labels.Set(sp.Labels)) {
		t.Error("the slim pod lost its labels")
	}
	a, b := podselect.Selector{}.Targets(p), podselect.Selector{}.Targets(sp)
	if len(a) != 3 || len(a) != len(b) {
		t.Fatalf("targets %v vs %v", a, b)
	}
	for i := range a {
		if a[i].Key() != b[i].Key() || a[i].PodUID != b[i].PodUID || instanceOf(a[i].Status) != instanceOf(b[i].Status) || instanceOf(a[i].Status) == "" && a[i].Container != "debug" {
			t.Errorf("%s: %q (%s) vs %q (%s)", a[i].Key(), instanceOf(a[i].Status), a[i].PodUID, instanceOf(b[i].Status), b[i].PodUID)
		}
	}
	// Nothing is shared with the pod it came from, but strings and labels.
	p.Status.ContainerStatuses[0].State.Running.StartedAt = metav1.NewTime(at.Add(time.Hour))
	if !sp.Status.ContainerStatuses[0].State.Running.StartedAt.Equal(&at) {
		t.Error("the slim pod shares its status with the pod")
	}
}
