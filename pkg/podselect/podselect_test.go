package podselect

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
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
				ns, name := p.Key()
				got = append(got, ns+"/"+name)
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

// pagedClient serves pods page by page as an API server does for Limit and Continue (the fake
// clientset ignores both), and records each list request's Limit and Continue.
func pagedClient(pods []runtime.Object, calls *[]string) *fake.Clientset {
	client := fake.NewClientset(pods...)
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts := a.(k8stesting.ListActionImpl).ListOptions
		*calls = append(*calls, fmt.Sprintf("%d@%q", opts.Limit, opts.Continue))
		start := 0
		if opts.Continue != "" {
			start, _ = strconv.Atoi(opts.Continue)
		}
		var page corev1.PodList
		for i := start; i < len(pods); i++ {
			p := pods[i].(*corev1.Pod)
			if a.GetNamespace() != "" && p.Namespace != a.GetNamespace() {
				continue
			}
			if opts.Limit > 0 && int64(len(page.Items)) == opts.Limit {
				page.Continue = strconv.Itoa(i)
				break
			}
			page.Items = append(page.Items, *p)
		}
		return true, &page, nil
	})
	return client
}

func TestListChunks(t *testing.T) {
	var pods []runtime.Object
	var all []string
	for i := range 7 {
		pods = append(pods, mkPod("a", fmt.Sprintf("p%d", i)))
		all = append(all, fmt.Sprintf("a/p%d", i))
	}
	tests := []struct {
		chunk int64
		calls string
	}{
		{chunk: 3, calls: `3@"" 3@"3" 3@"6"`},
		{chunk: 7, calls: `7@""`},
		{chunk: 0, calls: `500@""`},
		{chunk: -1, calls: `0@""`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.chunk), func(t *testing.T) {
			var calls []string
			client := pagedClient(pods, &calls)
			got, failed, err := List(context.Background(), client, Scope{Namespace: "a", ChunkSize: tt.chunk}, Selector{})
			if err != nil || len(failed) > 0 {
				t.Fatalf("List: %v %v", err, failed)
			}
			var names []string
			for _, packed := range got {
				p := packed.Unpack()
				names = append(names, p.Namespace+"/"+p.Name)
				if strings.Join(p.Containers, " ") != "init app sidecar debug" {
					t.Errorf("%s: containers %v", p.Name, p.Containers)
				}
			}
			if strings.Join(names, " ") != strings.Join(all, " ") {
				t.Errorf("pods %v, want %v", names, all)
			}
			if strings.Join(calls, " ") != tt.calls {
				t.Errorf("list requests %v, want %s", calls, tt.calls)
			}

			// The retention's presence list pages the same way.
			calls = nil
			presence, failed, err := ListPresence(context.Background(), client, []string{"a"}, false, tt.chunk)
			if err != nil || len(failed) > 0 {
				t.Fatalf("ListPresence: %v %v", err, failed)
			}
			present, ok := presence.Complete("a")
			if !ok || !present("p0") || !present("p6") || present("p7") {
				t.Errorf("presence: listed %v, p0 %v, p6 %v, p7 %v", ok, present("p0"), present("p6"), present("p7"))
			}
			if strings.Join(calls, " ") != tt.calls {
				t.Errorf("presence list requests %v, want %s", calls, tt.calls)
			}
		})
	}
}
