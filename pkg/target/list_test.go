package target

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/randfill"
)

// A packed pod must unpack to exactly the reduced pod: every field ReduceStatus keeps, each
// pointer set or not, times zero, in UTC or local. The pods are filled at random in every field
// (randfill), so a field that ReduceStatus starts to keep and Pack does not fails here.
func TestPackRoundTrip(t *testing.T) {
	f := randfill.NewWithSeed(1).NilChance(0.3).NumElements(0, 3).Funcs(
		// Random times as the API's decoders return them (local, whole seconds) and as code
		// makes them (UTC, nanoseconds), zero ones too.
		func(mt *metav1.Time, c randfill.Continue) {
			switch c.Intn(4) {
			case 0:
				*mt = metav1.Time{}
			case 1:
				mt.Time = time.Unix(c.Int63n(1<<34), 0).Local()
			default:
				mt.Time = time.Unix(c.Int63n(1<<34)-1<<33, c.Int63n(1e9)).UTC()
			}
		},
		// Most terminated states carry the status's container ID; some another (or none).
		func(st *corev1.ContainerStatus, c randfill.Continue) {
			c.FillNoCustom(st)
			if c.Intn(2) == 0 {
				// As runtimes write them (package compact holds their hex digits as bytes).
				st.ContainerID = fmt.Sprintf("containerd://%016x%016x%016x%016x", c.Uint64(), c.Uint64(), c.Uint64(), c.Uint64())
			}
			for _, s := range []*corev1.ContainerState{&st.State, &st.LastTerminationState} {
				if s.Terminated != nil && c.Intn(2) == 0 {
					s.Terminated.ContainerID = st.ContainerID
				}
			}
		},
	)
	for i := range 3000 {
		var pod corev1.Pod
		f.Fill(&pod)
		if i%2 == 0 {
			pod.UID = types.UID(uuid.NewUUID())
		}
		want := PodOf(&pod)
		got := want.Pack().Unpack()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("pod %d: unpacked\n%#v\nwant\n%#v", i, got, want)
		}
		if ns, name := want.Pack().Key(); ns != want.Namespace || name != want.Name {
			t.Fatalf("pod %d: key %s/%s, want %s/%s", i, ns, name, want.Namespace, want.Name)
		}
	}
}

// A List gives each target as the pod it was packed from gives it, with the node time of its
// pod's listing; a released target lets its pod go without changing the others.
func TestList(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(sec) * time.Second)) }
	for round := range 200 {
		var pods []corev1.Pod
		for i := range 1 + r.IntN(6) {
			p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: []string{"a", "b"}[r.IntN(2)], Name: string(rune('p' + i)), UID: "uid"},
				Spec: corev1.PodSpec{NodeName: []string{"", "n1", "n2"}[r.IntN(3)]}}
			for j := range r.IntN(4) {
				name := string(rune('c' + j))
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: name})
				if r.IntN(3) > 0 {
					p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: name, ContainerID: "containerd://" + name,
						RestartCount: int32(r.IntN(3)), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(r.IntN(100))}}})
				}
			}
			pods = append(pods, p)
		}
		var packed []Packed
		var reduced []Pod
		for i := range pods {
			p := PodOf(&pods[i])
			reduced = append(reduced, p)
			packed = append(packed, p.Pack())
		}
		nodeTimes := NewNodeTimes(packed)
		var l List
		var want []Target
		for i, p := range packed {
			p.Containers(func(j int, c string) {
				if c != reduced[i].Containers[j] {
					t.Fatalf("container %d of pod %d: %s, want %s", j, i, c, reduced[i].Containers[j])
				}
				if r.IntN(4) > 0 {
					l.Add(p, j, nodeTimes)
					tg := reduced[i].Target(c)
					tg.NodeTime = nodeTimes.Of(&reduced[i])
					want = append(want, tg)
				}
			})
		}
		if l.Len() != len(want) {
			t.Fatalf("round %d: %d targets, want %d", round, l.Len(), len(want))
		}
		released := map[int]bool{}
		for i := range want {
			if r.IntN(3) == 0 {
				l.Release(i)
				released[i] = true
			}
		}
		for i := range want {
			if released[i] {
				continue
			}
			if got := l.At(i); !reflect.DeepEqual(got, want[i]) {
				t.Fatalf("round %d, target %d: %#v, want %#v", round, i, got, want[i])
			}
			if ns := l.Namespace(i); ns != want[i].Namespace {
				t.Fatalf("round %d, target %d: namespace %s, want %s", round, i, ns, want[i].Namespace)
			}
		}
	}
}
