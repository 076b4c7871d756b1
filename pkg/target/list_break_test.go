package target

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
	"weak"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// breakPod is a pod with one running container on node, long enough names that its packed form
// is an allocation of its own (not the tiny allocator's).
func breakPod(name, node string, started time.Time) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "namespace-" + strings.Repeat("n", 40), Name: name + strings.Repeat("p", 40), UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + name,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}}}},
	}
}

// breakList lists pods together (one NodeTimes, as Select does) and returns the list and a weak
// pointer to each packed pod's memory. Nothing else keeps the packed pods.
func breakList(pods ...*corev1.Pod) (*List, []weak.Pointer[byte]) {
	var packed []Packed
	for _, p := range pods {
		tp := PodOf(p)
		packed = append(packed, tp.Pack())
	}
	nodeTimes := NewNodeTimes(packed)
	l := &List{}
	var ptrs []weak.Pointer[byte]
	for _, p := range packed {
		l.Add(p, 0, nodeTimes)
		ptrs = append(ptrs, weak.Make(unsafe.StringData(string(p))))
	}
	return l, ptrs
}

// Release promises that a pod's memory is freed once its containers are released (and that the
// strings of its targets do not keep it: At clones them). The other targets of its listing are
// still held, as they are while the run exports them. NewNodeTimes keys its map by the namespace
// and node read out of the packed pods (substrings of them), and a map assignment to an existing
// string key stores the new key too: the pod whose time is its (namespace, node)'s node time stays
// alive through the map (held by every item of the listing) until the whole listing is released.
// With pods spread over many nodes and namespaces, that is one packed pod per (namespace, node),
// up to all of them, for the whole run. Before, the keys were the decoded pod's own small strings.
func TestBreakReleaseFreesPackedPod(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		pods []*corev1.Pod
		// release is the index released and checked freed; the others stay in the list.
		release int
	}{
		{"no node: not in the node times", []*corev1.Pod{breakPod("a", "", t0), breakPod("b", "", t0)}, 0},
		{"older pod of its node", []*corev1.Pod{breakPod("a", "node-1", t0), breakPod("b", "node-1", t0.Add(time.Second))}, 0},
		{"newest pod of its node", []*corev1.Pod{breakPod("a", "node-1", t0), breakPod("b", "node-1", t0.Add(time.Second))}, 1},
		{"only pod of its node", []*corev1.Pod{breakPod("a", "node-1", t0), breakPod("b", "node-2", t0)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ptrs := breakList(tt.pods...)
			got := l.At(tt.release)
			got.Status = nil // as ExportEach does with the result
			l.Release(tt.release)
			for range 5 {
				runtime.GC()
			}
			if ptrs[tt.release].Value() != nil {
				t.Errorf("pod %d released (its target %s still held, Status nil) but its packed form is still alive", tt.release, got.Key())
			}
			runtime.KeepAlive(l)
			runtime.KeepAlive(got)
		})
	}
}

// Concurrent exports unpack and release different targets of one list, pods shared between
// targets, one node times map shared by all: no data race (run with -race).
func TestBreakListConcurrentAtRelease(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var packed []Packed
	for i := range 50 {
		p := breakPod(string(rune('a'+i%26))+string(rune('a'+i/26)), []string{"", "n1", "n2"}[i%3], t0.Add(time.Duration(i)*time.Second))
		p.Spec.InitContainers = []corev1.Container{{Name: "init"}}
		tp := PodOf(p)
		packed = append(packed, tp.Pack())
	}
	nodeTimes := NewNodeTimes(packed)
	var l List
	for _, p := range packed {
		p.Containers(func(i int, _ string) { l.Add(p, i, nodeTimes) })
	}
	want := l.All()
	var wg sync.WaitGroup
	got := make([]Target, l.Len())
	for i := range l.Len() {
		wg.Go(func() {
			got[i] = l.At(i)
			_ = l.Namespace(i)
			l.Release(i)
		})
	}
	wg.Wait()
	for i := range want {
		if got[i].Key() != want[i].Key() || !got[i].NodeTime.Equal(want[i].NodeTime) || (got[i].Status == nil) != (want[i].Status == nil) {
			t.Fatalf("target %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
