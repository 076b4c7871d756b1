package target

import (
	"encoding/binary"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/logexport/kubectl-logexport/pkg/compact"
)

// Packed is a Pod held as one string (package compact): a listing of tens of thousands of pods
// holds this from the moment each page is read until the pod's containers are exported, about a
// quarter of the Pod, its statuses and their strings allocated apart.
type Packed string

// Pack returns p packed; Unpack gives it back.
func (p *Pod) Pack() Packed {
	b := make([]byte, 0, 128)
	b = compact.String(b, p.Namespace)
	b = compact.String(b, p.Name)
	b = compact.Token(b, p.UID)
	b = compact.String(b, p.Node)
	b = compact.Time(b, p.reported)
	b = binary.AppendUvarint(b, uint64(len(p.Containers)))
	for _, c := range p.Containers {
		b = compact.String(b, c)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Statuses)))
	for i := range p.Statuses {
		b = packStatus(b, &p.Statuses[i])
	}
	return Packed(b)
}

// Key returns the packed pod's namespace and name without unpacking the rest.
func (p Packed) Key() (namespace, name string) {
	r := compact.NewReader(string(p))
	return r.String(), r.String()
}

// Containers calls fn with the index and name of each container of the packed pod, in order.
func (p Packed) Containers(fn func(i int, name string)) {
	r := compact.NewReader(string(p))
	r.SkipString()
	r.SkipString()
	r.SkipToken()
	r.SkipString()
	r.Time()
	for i := range int(r.Uvarint()) {
		fn(i, r.String())
	}
}

// Unpack returns the pod. Its names share p's memory; its statuses are its own.
func (p Packed) Unpack() Pod {
	r := compact.NewReader(string(p))
	pod := Pod{Namespace: r.String(), Name: r.String(), UID: r.Token(), Node: r.String(), reported: r.Time()}
	pod.Containers = make([]string, int(r.Uvarint()))
	for i := range pod.Containers {
		pod.Containers[i] = r.String()
	}
	pod.Statuses = make([]corev1.ContainerStatus, int(r.Uvarint()))
	for i := range pod.Statuses {
		unpackStatus(r, &pod.Statuses[i])
	}
	return pod
}

// The fields of a reduced status (ReduceStatus) that are set, one bit each.
const (
	hasReady = 1 << iota
	hasStarted
	startedTrue
)

// The parts of a reduced state that are set, one bit each.
const (
	stateWaiting = 1 << iota
	stateRunning
	stateTerminated
	// The terminated state's container ID is the status's (most are): not written twice.
	sameContainerID
)

func packStatus(b []byte, st *corev1.ContainerStatus) []byte {
	b = compact.String(b, st.Name)
	b = compact.Token(b, st.ContainerID)
	b = binary.AppendVarint(b, int64(st.RestartCount))
	var flags byte
	if st.Ready {
		flags |= hasReady
	}
	if st.Started != nil {
		flags |= hasStarted
		if *st.Started {
			flags |= startedTrue
		}
	}
	b = append(b, flags)
	for _, s := range []*corev1.ContainerState{&st.State, &st.LastTerminationState} {
		b = packState(b, s, st.ContainerID)
	}
	return b
}

func packState(b []byte, s *corev1.ContainerState, containerID string) []byte {
	var parts byte
	if s.Waiting != nil {
		parts |= stateWaiting
	}
	if s.Running != nil {
		parts |= stateRunning
	}
	if s.Terminated != nil {
		parts |= stateTerminated
		if s.Terminated.ContainerID == containerID {
			parts |= sameContainerID
		}
	}
	b = append(b, parts)
	if s.Waiting != nil {
		b = compact.String(b, s.Waiting.Reason)
	}
	if s.Running != nil {
		b = compact.Time(b, s.Running.StartedAt.Time)
	}
	if t := s.Terminated; t != nil {
		b = binary.AppendVarint(b, int64(t.ExitCode))
		b = binary.AppendVarint(b, int64(t.Signal))
		b = compact.String(b, t.Reason)
		b = compact.Time(b, t.StartedAt.Time)
		b = compact.Time(b, t.FinishedAt.Time)
		if parts&sameContainerID == 0 {
			b = compact.Token(b, t.ContainerID)
		}
	}
	return b
}

func unpackStatus(r *compact.Reader, st *corev1.ContainerStatus) {
	st.Name = r.String()
	st.ContainerID = r.Token()
	st.RestartCount = int32(r.Varint())
	flags := r.Byte()
	st.Ready = flags&hasReady != 0
	if flags&hasStarted != 0 {
		started := flags&startedTrue != 0
		st.Started = &started
	}
	unpackState(r, &st.State, st.ContainerID)
	unpackState(r, &st.LastTerminationState, st.ContainerID)
}

func unpackState(r *compact.Reader, s *corev1.ContainerState, containerID string) {
	parts := r.Byte()
	if parts&stateWaiting != 0 {
		s.Waiting = &corev1.ContainerStateWaiting{Reason: r.String()}
	}
	if parts&stateRunning != 0 {
		s.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: r.Time()}}
	}
	if parts&stateTerminated != 0 {
		t := &corev1.ContainerStateTerminated{ExitCode: int32(r.Varint()), Signal: int32(r.Varint()), Reason: r.String(),
			StartedAt: metav1.Time{Time: r.Time()}, FinishedAt: metav1.Time{Time: r.Time()}, ContainerID: containerID}
		if parts&sameContainerID == 0 {
			t.ContainerID = r.Token()
		}
		s.Terminated = t
	}
}

// List is the targets of a selection, held packed: each is its pod (shared by the pod's
// containers), the index of its container and its node times. At unpacks one; Release lets one go.
type List struct {
	items []item
}

type item struct {
	pod       Packed
	container int32
	nodeTimes NodeTimes
}

// Add appends container i of pod, whose node times are nodeTimes (NodeTimes, of the pods listed
// with it; nil if unknown).
func (l *List) Add(pod Packed, i int, nodeTimes NodeTimes) {
	l.items = append(l.items, item{pod: pod, container: int32(i), nodeTimes: nodeTimes})
}

// Grow makes room for n more targets.
func (l *List) Grow(n int) {
	if free := cap(l.items) - len(l.items); n > free {
		items := make([]item, len(l.items), len(l.items)+n)
		copy(items, l.items)
		l.items = items
	}
}

// Len is the number of targets.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.items)
}

// At returns target i, with its node time. Not after Release(i).
func (l *List) At(i int) Target {
	it := &l.items[i]
	pod := it.pod.Unpack()
	t := pod.Target(pod.Containers[it.container])
	t.NodeTime = it.nodeTimes.Of(&pod)
	// The names outlive the export (a namespace's checkpoints are held by them): as parts of
	// the packed pod they would keep all of it.
	t.Namespace, t.Pod, t.PodUID, t.Container = strings.Clone(t.Namespace), strings.Clone(t.Pod), strings.Clone(t.PodUID), strings.Clone(t.Container)
	return t
}

// Namespace returns the namespace of target i without unpacking it. Not after Release(i).
func (l *List) Namespace(i int) string {
	ns, _ := l.items[i].pod.Key()
	return ns
}

// Release lets target i go: its pod's memory is freed once its other containers are released too.
func (l *List) Release(i int) { l.items[i] = item{} }

// All returns every target, unpacked.
func (l *List) All() []Target {
	out := make([]Target, 0, l.Len())
	for i := range l.Len() {
		out = append(out, l.At(i))
	}
	return out
}
