package export

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

func TestServes(t *testing.T) {
	at := func(sec int) metav1.Time { return metav1.NewTime(ts(sec, 0)) }
	running := func(id string, start int) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "app", ContainerID: id, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(start)}}}
	}
	restarted := func(old string, oldStart int, id string, start int) corev1.ContainerStatus {
		st := running(id, start)
		st.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ContainerID: old, StartedAt: at(oldStart)}
		return st
	}
	pod := func(uid string, created int, st corev1.ContainerStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: types.UID("uid" + uid), CreationTimestamp: at(created)},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{st}}}
	}
	listed := target.Target{Namespace: "ns", Pod: "p", PodUID: "uid", Container: "app"}
	x := &instance{id: "c://x", started: ts(0, 0), running: true}
	xPrev := &instance{id: "c://x", started: ts(0, 0), previous: true}
	tests := []struct {
		name     string
		now      *corev1.Pod // nil: deleted
		in       *instance
		earliest int // seconds; -1: no line
		changed  bool
		// unprovable: the pod is gone, so the stream's instance cannot be told.
		unprovable bool
	}{
		{"unchanged", pod("", 0, running("c://x", 0)), x, 5, false, false},
		{"deleted after it served", nil, x, 5, false, true},
		{"restarted, lines older than the new instance", pod("", 0, restarted("c://x", 0, "c://y", 10)), x, 5, false, false},
		{"restarted, lines as new as the new instance", pod("", 0, restarted("c://x", 0, "c://y", 10)), x, 10, true, false},
		{"restarted, no line to tell", pod("", 0, restarted("c://x", 0, "c://y", 10)), x, -1, true, false},
		{"restarted twice", pod("", 0, restarted("c://w", 8, "c://y", 10)), x, 5, true, false},
		{"previous: still the previous one", pod("", 0, restarted("c://x", 0, "c://y", 10)), xPrev, 5, false, false},
		{"previous: another restart since", pod("", 0, restarted("c://y", 10, "c://z", 20)), xPrev, 5, true, false},
		{"replaced, lines older than the new pod's container", pod("2", 30, running("c://n", 31)), x, 5, false, true},
		{"replaced, lines as new as the new pod's container", pod("2", 30, running("c://n", 31)), x, 31, true, false},
		{"replaced, the new pod's container not started", pod("2", 30, corev1.ContainerStatus{Name: "app"}), x, 40, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			if tt.now != nil {
				client = fake.NewClientset(tt.now)
			}
			var earliest time.Time
			if tt.earliest >= 0 {
				earliest = ts(tt.earliest, 0)
			}
			err := serves(context.Background(), &Exporter{Client: client}, listed, tt.in, earliest)
			var c *instanceChanged
			changed, unprovable := errors.As(err, &c), errors.Is(err, errUnprovable)
			if changed != tt.changed || unprovable != tt.unprovable || (err != nil && !changed && !unprovable) {
				t.Fatalf("got %v, want changed=%v unprovable=%v", err, tt.changed, tt.unprovable)
			}
		})
	}
}

func TestServedBefore(t *testing.T) {
	listedAt := ts(1000, 0) // the node's clock had passed this when the pods were listed
	current := &instance{id: "c://x", started: ts(0, 0), running: true}
	previous := &instance{id: "c://w", started: ts(-500, 0), previous: true}
	tests := []struct {
		name     string
		in       *instance
		earliest time.Time
		nodeTime time.Time
		want     bool
	}{
		{name: "a line older than the list, beyond the skew", in: current, earliest: ts(100, 0), nodeTime: listedAt, want: true},
		{name: "within the skew of the list: another node's new pod may have logged it", in: current, earliest: listedAt.Add(-nodeClockSkew + time.Second), nodeTime: listedAt},
		{name: "after the list", in: current, earliest: ts(1001, 0), nodeTime: listedAt},
		{name: "no line", in: current, nodeTime: listedAt},
		{name: "node time unknown", in: current, earliest: ts(100, 0)},
		// previous=true may serve the listed current instance after a restart: it ran before
		// the list, so an old line proves nothing.
		{name: "previous instance", in: previous, earliest: ts(-400, 0), nodeTime: listedAt},
		// The instance cannot have logged before it started: the node's clock stepped back.
		{name: "older than the instance's start", in: current, earliest: ts(-1, 0), nodeTime: listedAt},
		{name: "in the second the instance started", in: &instance{id: "c://y", started: ts(5, 0), running: true}, earliest: ts(4, 999999999).Add(1), nodeTime: listedAt, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := servedBefore(tt.in, tt.earliest, tt.nodeTime); got != tt.want {
				t.Errorf("servedBefore = %v, want %v", got, tt.want)
			}
		})
	}
}

// A first export whose lines are older than the node's clock at the list needs no status
// request to prove its instance; without the node's time, or with lines too new, it asks.
func TestFirstExportProvenByNodeTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		lineAge  time.Duration
		nodeTime bool
		wantGets int
	}{
		{name: "old lines", lineAge: time.Hour, nodeTime: true, wantGets: 0},
		{name: "lines within the skew", lineAge: time.Second, nodeTime: true, wantGets: 1},
		{name: "node time unknown", lineAge: time.Hour, wantGets: 1},
		{name: "a line before the instance started", lineAge: 3 * time.Hour, nodeTime: true, wantGets: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := logserver.New(t)
			// p0 started two hours ago, p1 on the same node now.
			clock := now.Add(-2 * time.Hour)
			srv.NodeClock = func() time.Time { return clock }
			srv.AddPod("default", "p0", "c")
			clock = now
			srv.AddPod("default", "p1", "c")
			srv.Append("default", "p0", "c", logserver.Entry{Time: now.Add(-tt.lineAge), Text: "x"})
			var gets atomic.Int64
			e, d := breakExporter(t, srv, t.TempDir(), Options{}, func(r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "/log") {
					gets.Add(1)
				}
			})
			defer d.Close()
			tgt := breakTarget(t, srv, "p0", "c")
			if tt.nodeTime {
				pods := listed(srv.Pod("default", "p0"), srv.Pod("default", "p1"))
				p0 := pods[0].Unpack()
				tgt.NodeTime = target.NewNodeTimes(pods).Of(&p0)
				if !tgt.NodeTime.Equal(now) {
					t.Fatalf("node time %v, want p1's start %v", tgt.NodeTime, now)
				}
			}
			if res := e.Export(context.Background(), tgt); res.Err != nil || res.Lines != 1 {
				t.Fatalf("export: %d lines, %v", res.Lines, res.Err)
			}
			if got := gets.Load(); got != int64(tt.wantGets) {
				t.Errorf("%d status requests, want %d", got, tt.wantGets)
			}
		})
	}
}
