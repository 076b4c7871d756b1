package podselect

import (
	"context"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/logexport/kubectl-logexport/pkg/target"
)

// TestStreamForbiddenLater: with -A, a cluster-wide listing that is refused (403) on a page after
// the first — the pods of the pages before it were passed to fn already — must not pass them a
// second time by falling back to namespace-by-namespace: every container exactly once.
func TestStreamForbiddenLater(t *testing.T) {
	pods := streamPods()
	objs := append([]runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
	}, pods...)
	tests := []struct {
		name   string
		forbid int // the list request (from 1) refused, when cluster-wide
	}{
		{name: "first page", forbid: 1},
		{name: "second page", forbid: 2},
		{name: "third page", forbid: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			client := pagedClient(pods, &calls)
			for _, o := range objs[:2] {
				if err := client.Tracker().Add(o); err != nil {
					t.Fatal(err)
				}
			}
			n := 0
			client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetNamespace() != "" {
					return false, nil, nil
				}
				n++
				if n == tt.forbid {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
				}
				return false, nil, nil
			})
			sel := Selection{Scope: Scope{AllNamespaces: true, ChunkSize: 3}, Selector: mustCompile(t, nil, nil, []string{"^app$"}, nil)}
			seen := map[string]int{}
			var got []string
			_, err := Stream(context.Background(), client, sel, func(t target.Target) bool {
				seen[t.Key()]++
				got = append(got, t.Key())
				return true
			})
			for k, c := range seen {
				if c != 1 {
					t.Errorf("%s passed %d times (err %v); streamed %s", k, c, err, strings.Join(got, " "))
				}
			}
		})
	}
}

// TestStreamListedTwice: a list that returns a pod twice (a page served again) is selected once
// by Select (TestSelectListedTwice); Stream, which now replaces Select for one selection, must
// pass its containers once too, or they are exported twice (at once, into the same files).
func TestStreamListedTwice(t *testing.T) {
	tests := []struct {
		name  string
		pages [][]string // pod names of each page, in the namespace ns
	}{
		{name: "twice in one page", pages: [][]string{{"a", "a", "b", "b"}}},
		{name: "a page served again", pages: [][]string{{"a", "b"}, {"a", "b"}, {"c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				i := 0
				if c := a.(k8stesting.ListActionImpl).ListOptions.Continue; c != "" {
					i, _ = strconv.Atoi(c)
				}
				var list corev1.PodList
				for _, name := range tt.pages[i] {
					list.Items = append(list.Items, *mkPod("ns", name))
				}
				if i+1 < len(tt.pages) {
					list.Continue = strconv.Itoa(i + 1)
				}
				return true, &list, nil
			})
			sel := Selection{Scope: Scope{Namespace: "ns", ChunkSize: 2}, Selector: mustCompile(t, nil, nil, []string{"^app$"}, nil)}
			want, _, err := Select(context.Background(), client, []Selection{sel})
			if err != nil {
				t.Fatal(err)
			}
			var got []target.Target
			if _, err := Stream(context.Background(), client, sel, func(t target.Target) bool {
				got = append(got, t)
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if keys(got) != keys(want) {
				t.Errorf("streamed %s\nselected %s", keys(got), keys(want))
			}
		})
	}
}
