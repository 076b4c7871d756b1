package podselect

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
