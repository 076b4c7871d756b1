package podselect

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestCheckNamespace(t *testing.T) {
	nsRes := schema.GroupResource{Resource: "namespaces"}
	forbid := func(verb string) k8stesting.ReactionFunc {
		return func(a k8stesting.Action) (bool, runtime.Object, error) {
			return a.GetVerb() == verb, nil, apierrors.NewForbidden(nsRes, "", errors.New("RBAC"))
		}
	}
	tests := []struct {
		name    string
		ns      string
		forbid  []string
		fail    bool
		want    NamespaceState
		wantErr bool
	}{
		{name: "exists", ns: "shop", want: NamespaceExists},
		{name: "missing", ns: "shpo", want: NamespaceMissing},
		{name: "no get, list finds it", ns: "shop", forbid: []string{"get"}, want: NamespaceExists},
		{name: "no get, list proves it missing", ns: "shpo", forbid: []string{"get"}, want: NamespaceMissing},
		{name: "neither get nor list: unknown, never missing", ns: "shpo", forbid: []string{"get", "list"}, want: NamespaceUnknown},
		{name: "server error", ns: "shop", fail: true, want: NamespaceUnknown, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
			for _, v := range tt.forbid {
				c.PrependReactor(v, "namespaces", forbid(v))
			}
			if tt.fail {
				c.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewServiceUnavailable("down")
				})
			}
			got, err := CheckNamespace(context.Background(), c, tt.ns)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("got %s, %v; want %s, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
