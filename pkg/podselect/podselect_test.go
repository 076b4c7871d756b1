package podselect

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func mkPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			InitContainers:      []corev1.Container{{Name: "init"}},
			Containers:          []corev1.Container{{Name: "app"}, {Name: "sidecar"}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}},
		}}
}

func TestListAndTargets(t *testing.T) {
	objs := []runtime.Object{mkPod("b", "redis-1"), mkPod("a", "redis-0"), mkPod("a", "web-0"), mkPod("b", "lighthouse")}
	tests := []struct {
		name                                  string
		scope                                 Scope
		pods, exclude, containers, exclContrs []string
		want                                  string
	}{
		{name: "all namespaces, every pod", scope: Scope{AllNamespaces: true},
			want: "a/redis-0 a/web-0 b/lighthouse b/redis-1"},
		{name: "one namespace", scope: Scope{Namespace: "a"}, want: "a/redis-0 a/web-0"},
		{name: "unanchored patterns", scope: Scope{AllNamespaces: true}, pods: []string{"dis", "light"},
			want: "a/redis-0 b/lighthouse b/redis-1"},
		{name: "exclusion wins", scope: Scope{AllNamespaces: true}, pods: []string{"redis"}, exclude: []string{"-1$"},
			want: "a/redis-0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := Compile(tt.pods, tt.exclude, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			pods, failed, err := List(context.Background(), fake.NewClientset(objs...), tt.scope, sel)
			if err != nil || len(failed) > 0 {
				t.Fatalf("List: %v %v", err, failed)
			}
			var got []string
			for _, p := range pods {
				got = append(got, p.Namespace+"/"+p.Name)
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("got %v, want %s", got, tt.want)
			}
		})
	}
}

func TestTargetsContainers(t *testing.T) {
	tests := []struct {
		containers, exclude []string
		want                string
	}{
		{nil, nil, "init app sidecar debug"},
		{[]string{"^(app|debug)$"}, nil, "app debug"},
		{nil, []string{"side", "init"}, "app debug"},
	}
	for _, tt := range tests {
		sel, err := Compile(nil, nil, tt.containers, tt.exclude)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tg := range sel.Targets(mkPod("a", "p")) {
			got = append(got, tg.Container)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%v/%v: got %v, want %s", tt.containers, tt.exclude, got, tt.want)
		}
	}
}

func TestCompileNamesBadPattern(t *testing.T) {
	_, err := Compile([]string{"ok"}, nil, nil, []string{"("})
	if err == nil || !strings.Contains(err.Error(), `invalid --exclude-container pattern "("`) {
		t.Fatalf("got %v", err)
	}
}
