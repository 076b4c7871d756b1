package podselect

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/logexport/kubectl-logexport/pkg/target"
)

// streamPods are pods in the order the API server lists them, on two nodes, each started at its
// index in seconds.
func streamPods() []runtime.Object {
	var pods []runtime.Object
	i := 0
	for _, ns := range []string{"a", "b"} {
		for _, name := range []string{"redis-0", "redis-1", "web-0", "web-1", "web-2"} {
			p := mkPod(ns, name)
			p.Spec.NodeName = fmt.Sprintf("node-%d", i%2)
			start := metav1.NewTime(time.Unix(int64(1000+i), 0))
			p.Status.StartTime = &start
			pods = append(pods, p)
			i++
		}
	}
	return pods
}

func keys(ts []target.Target) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Key())
	}
	return strings.Join(out, " ")
}

// TestStreamAsSelect: Stream passes the containers Select returns, in the same order (the API
// server's, which is Select's when namespaces do not share a prefix), whatever the page size,
// each with the node time of the pods listed up to its own.
func TestStreamAsSelect(t *testing.T) {
	pods := streamPods()
	for _, scope := range []Scope{{AllNamespaces: true}, {Namespace: "b"}} {
		for _, chunk := range []int64{1, 3, 0, -1} {
			for _, pattern := range [][]string{nil, {"web"}} {
				scope := scope
				scope.ChunkSize = chunk
				t.Run(fmt.Sprintf("%+v %v", scope, pattern), func(t *testing.T) {
					var calls []string
					client := pagedClient(pods, &calls)
					sel := Selection{Scope: scope, Selector: mustCompile(t, pattern, nil, []string{"app|debug"}, nil)}
					want, _, err := Select(context.Background(), client, []Selection{sel})
					if err != nil {
						t.Fatal(err)
					}
					var got []target.Target
					failed, err := Stream(context.Background(), client, sel, func(t target.Target) bool {
						got = append(got, t)
						return true
					})
					if err != nil || len(failed) > 0 {
						t.Fatalf("Stream: %v %v", err, failed)
					}
					if keys(got) != keys(want) || len(got) == 0 {
						t.Fatalf("streamed %s\nselected %s", keys(got), keys(want))
					}
					// The node time is the newest start on the pod's node among the pods listed so far.
					newest := map[string]time.Time{}
					j := 0
					for _, o := range pods {
						p := o.(*corev1.Pod)
						if !scope.AllNamespaces && p.Namespace != scope.Namespace {
							continue
						}
						k := p.Namespace + "/" + p.Spec.NodeName
						newest[k] = p.Status.StartTime.Time
						for ; j < len(got) && got[j].Namespace == p.Namespace && got[j].Pod == p.Name; j++ {
							if !got[j].NodeTime.Equal(newest[k]) || got[j].NodeTime.After(want[j].NodeTime) {
								t.Errorf("%s: node time %v, want %v (Select's %v)", got[j].Key(), got[j].NodeTime, newest[k], want[j].NodeTime)
							}
						}
					}
				})
			}
		}
	}
}

// expiring returns a client whose list requests with a continue token fail as expired at the
// calls in expire (counting every list request from 1).
func expiring(pods []runtime.Object, calls *[]string, expire ...int) *fake.Clientset {
	client := pagedClient(pods, calls)
	n := 0
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		n++
		for _, e := range expire {
			if n == e && a.(k8stesting.ListActionImpl).ListOptions.Continue != "" {
				*calls = append(*calls, "expired")
				return true, nil, apierrors.NewResourceExpired("the provided continue parameter is too old")
			}
		}
		return false, nil, nil
	})
	return client
}

// TestStreamExpired: a listing whose continue token expired while the containers were taken
// starts again and passes every pod once, in order, skipping those it passed; one that expires
// again and again before passing a new pod fails.
func TestStreamExpired(t *testing.T) {
	pods := streamPods()
	all := make([]string, 0, len(pods))
	for _, o := range pods {
		all = append(all, o.(*corev1.Pod).Namespace+"/"+o.(*corev1.Pod).Name+"/app")
	}
	tests := []struct {
		name   string
		expire []int
		calls  string
		err    bool
	}{
		{name: "once", expire: []int{3},
			calls: `3@"" 3@"3" expired 3@"" 3@"3" 3@"6" 3@"9"`},
		{name: "twice", expire: []int{2, 5},
			calls: `3@"" expired 3@"" 3@"3" expired 3@"" 3@"3" 3@"6" 3@"9"`},
		{name: "again, before a new pod", expire: []int{3, 5, 8},
			calls: `3@"" 3@"3" expired 3@"" expired 3@"" 3@"3" expired 3@"" 3@"3" 3@"6" 3@"9"`},
		{name: "again and again before a new pod", expire: []int{3, 5, 7, 9}, err: true,
			calls: `3@"" 3@"3" expired 3@"" expired 3@"" expired 3@"" expired`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			client := expiring(pods, &calls, tt.expire...)
			sel := Selection{Scope: Scope{AllNamespaces: true, ChunkSize: 3}, Selector: mustCompile(t, nil, nil, []string{"^app$"}, nil)}
			var got []string
			_, err := Stream(context.Background(), client, sel, func(t target.Target) bool {
				got = append(got, t.Key())
				return true
			})
			if tt.err != apierrors.IsResourceExpired(err) || !tt.err && err != nil {
				t.Fatalf("error %v, want expired: %v", err, tt.err)
			}
			if !tt.err && strings.Join(got, " ") != strings.Join(all, " ") {
				t.Errorf("streamed %v\nwant %v", got, all)
			}
			if strings.Join(calls, " ") != tt.calls {
				t.Errorf("list requests %v\nwant %s", strings.Join(calls, " "), tt.calls)
			}
		})
	}
}

// TestStreamForbidden: without the right to list pods in all namespaces, Stream lists them
// namespace by namespace, as List does, and names those it may not read.
func TestStreamForbidden(t *testing.T) {
	ns := func(name string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	client := fake.NewClientset(ns("closed"), ns("open"), ns("other"), mkPod("open", "a"), mkPod("closed", "b"), mkPod("other", "c"))
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "" || a.GetNamespace() == "closed" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
		}
		return false, nil, nil
	})
	sel := Selection{Scope: Scope{AllNamespaces: true}, Selector: mustCompile(t, nil, nil, []string{"^app$"}, nil)}
	for _, stopAt := range []int{0, 1} {
		var got []target.Target
		failed, err := Stream(context.Background(), client, sel, func(t target.Target) bool {
			got = append(got, t)
			return len(got) != stopAt
		})
		want := "open/a/app other/c/app"
		if stopAt == 1 {
			want = "open/a/app"
		}
		if err != nil || keys(got) != want {
			t.Errorf("stop at %d: streamed %s, %v; want %s", stopAt, keys(got), err, want)
		}
		if len(failed) != 1 || failed[0].Namespace != "closed" || !apierrors.IsForbidden(failed[0].Err) {
			t.Errorf("stop at %d: failed namespaces %v, want closed", stopAt, failed)
		}
	}
}

func TestRecentKeys(t *testing.T) {
	tests := []struct {
		max  int
		keys string
		want string // 1: new, 0: among the recent ones
	}{
		{max: 2, keys: "a b a b c a b c", want: "1 1 0 0 1 1 1 1"},
		{max: 3, keys: "a b c a d a b", want: "1 1 1 0 1 1 1"},
		{max: 0, keys: "a b c d e a", want: "1 1 1 1 1 0"},
	}
	for _, tt := range tests {
		r := newRecentKeys(tt.max)
		var got []string
		for _, k := range strings.Fields(tt.keys) {
			if r.add(k) {
				got = append(got, "1")
			} else {
				got = append(got, "0")
			}
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("max %d, %s: %s, want %s", tt.max, tt.keys, strings.Join(got, " "), tt.want)
		}
	}
}
