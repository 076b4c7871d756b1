package podselect

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/logexport/kubectl-logexport/pkg/shard"
)

func labeled(p *corev1.Pod, labels map[string]string) *corev1.Pod {
	p.Labels = labels
	return p
}

func mustCompile(t *testing.T, pods, excludePods, containers, excludeContainers []string) Selector {
	t.Helper()
	s, err := Compile(pods, excludePods, containers, excludeContainers)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSelect(t *testing.T) {
	objs := []runtime.Object{
		mkPod("default", "redis-0"), mkPod("default", "lighthouse"), mkPod("default", "web"),
		mkPod("shop", "cart"), mkPod("shop", "cart-canary"),
		labeled(mkPod("ops", "a"), map[string]string{"tier": "db"}), labeled(mkPod("ops", "b"), map[string]string{"tier": "web"}),
		mkPod("ops-x", "a"),
	}
	in := func(ns string, sel Selector) Selection { return Selection{Scope: Scope{Namespace: ns}, Selector: sel} }
	tests := []struct {
		name string
		sels func(t *testing.T) []Selection
		want string
	}{
		{"one selection is List and Targets", func(t *testing.T) []Selection {
			return []Selection{in("default", mustCompile(t, []string{"redis"}, nil, []string{"app"}, nil))}
		}, "default/redis-0/app"},
		{"the seed's map", func(t *testing.T) []Selection {
			return []Selection{
				in("default", mustCompile(t, []string{"redis", "lighthouse"}, nil, []string{"^app$"}, nil)),
				in("shop", mustCompile(t, []string{"cart"}, []string{"cart-canary"}, []string{"^app$"}, nil)),
			}
		}, "default/lighthouse/app default/redis-0/app shop/cart/app"},
		{"sorted by namespace then pod, not by key (ops-x/a after ops/b)", func(t *testing.T) []Selection {
			return []Selection{
				in("ops-x", mustCompile(t, nil, nil, []string{"^app$"}, nil)),
				in("ops", mustCompile(t, nil, nil, []string{"^app$"}, nil)),
			}
		}, "ops/a/app ops/b/app ops-x/a/app"},
		{"label selector per selection", func(t *testing.T) []Selection {
			s := in("ops", mustCompile(t, nil, nil, []string{"^app$"}, nil))
			s.Scope.LabelSelector = "tier=db"
			return []Selection{s}
		}, "ops/a/app"},
		{"a pod two selections match is exported once, with the containers either selects", func(t *testing.T) []Selection {
			return []Selection{
				in("default", mustCompile(t, []string{"redis"}, nil, []string{"sidecar"}, nil)),
				in("default", mustCompile(t, []string{"redis", "web"}, nil, []string{"^app$", "sidecar"}, nil)),
				{Scope: Scope{AllNamespaces: true}, Selector: mustCompile(t, []string{"redis"}, nil, []string{"init|debug"}, nil)},
			}
		}, "default/redis-0/init default/redis-0/app default/redis-0/sidecar default/redis-0/debug default/web/app default/web/sidecar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, failed, err := Select(context.Background(), fake.NewClientset(objs...), tt.sels(t))
			targets := list.All()
			if err != nil || len(failed) > 0 {
				t.Fatalf("Select: %v %v", err, failed)
			}
			var got []string
			for _, tg := range targets {
				got = append(got, tg.Key())
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("got  %s\nwant %s", strings.Join(got, " "), tt.want)
			}
		})
	}
}

// With several selections, a namespace that may not be read is named and the others are still
// selected; with one, it is the run's error, as before.
func TestSelectForbiddenNamespace(t *testing.T) {
	client := fake.NewClientset(mkPod("open", "a"), mkPod("closed", "b"))
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "closed" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
		}
		return false, nil, nil
	})
	sel := mustCompile(t, nil, nil, []string{"^app$"}, nil)
	closed := Selection{Scope: Scope{Namespace: "closed"}, Selector: sel}
	open := Selection{Scope: Scope{Namespace: "open"}, Selector: sel}
	list, failed, err := Select(context.Background(), client, []Selection{closed, open, closed})
	targets := list.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 1 || targets[0].Key() != "open/a/app" {
		t.Fatalf("targets %v", targets)
	}
	if len(failed) != 1 || failed[0].Namespace != "closed" || !apierrors.IsForbidden(failed[0].Err) {
		t.Fatalf("failed namespaces %v, want closed once", failed)
	}
	if _, _, err := Select(context.Background(), client, []Selection{closed}); !apierrors.IsForbidden(err) {
		t.Fatalf("one selection: got %v, want the forbidden error", err)
	}
}

func TestNarrow(t *testing.T) {
	sel := func(ns string, all bool, labels string) Selection {
		return Selection{Scope: Scope{Namespace: ns, AllNamespaces: all, LabelSelector: labels}}
	}
	tests := []struct {
		name     string
		s, n     Selection
		want     Scope
		selected bool
	}{
		{"no namespace flag keeps the file's", sel("shop", false, "app=cart"), sel("", true, ""), Scope{Namespace: "shop", LabelSelector: "app=cart"}, true},
		{"-n keeps the file's selections for it", sel("shop", false, ""), sel("shop", false, ""), Scope{Namespace: "shop"}, true},
		{"-n drops the file's selections for others", sel("shop", false, ""), sel("default", false, ""), Scope{}, false},
		{"-n narrows an all-namespaces selection to it", sel("", true, ""), sel("shop", false, ""), Scope{Namespace: "shop"}, true},
		{"label selectors both hold", sel("shop", false, "app=cart"), sel("", true, "tier!=canary"), Scope{Namespace: "shop", LabelSelector: "app=cart,tier!=canary"}, true},
		{"a flag's label selector alone", sel("shop", false, ""), sel("", true, "tier=db"), Scope{Namespace: "shop", LabelSelector: "tier=db"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.s.Narrow(tt.n)
			if ok != tt.selected || (ok && got.Scope != tt.want) {
				t.Fatalf("got %+v %v, want %+v %v", got.Scope, ok, tt.want, tt.selected)
			}
		})
	}
}

// Narrowed patterns must both match: the file's and the flags'.
func TestAnd(t *testing.T) {
	file := mustCompile(t, []string{"cart", "redis"}, []string{"canary"}, nil, []string{"^debug$"})
	flags := mustCompile(t, []string{"-0$", "-1$"}, []string{"-1$"}, []string{"app|debug"}, nil)
	s := file.And(flags)
	for name, want := range map[string]bool{"cart-0": true, "redis-0": true, "cart-1": false, "cart-canary-0": false, "web-0": false, "cart": false} {
		if got := s.MatchPod(name); got != want {
			t.Errorf("pod %s: got %v, want %v", name, got, want)
		}
	}
	for name, want := range map[string]bool{"app": true, "debug": false, "sidecar": false} {
		if got := s.MatchContainer(name); got != want {
			t.Errorf("container %s: got %v, want %v", name, got, want)
		}
	}
	if file.MatchPod("cart-2") != true || !file.MatchContainer("sidecar") {
		t.Errorf("And changed the selector it was called on")
	}
	if !(Selector{}).Empty() || s.Empty() || (Selector{}).And(Selector{}).Empty() {
		t.Errorf("Empty")
	}
}

// A selector with a shard keeps only that shard's pods: the shards of a total together select
// every pod once, whatever the other selectors and however many selections match a pod.
func TestSelectShard(t *testing.T) {
	var objs []runtime.Object
	for i := range 40 {
		objs = append(objs, mkPod("default", fmt.Sprintf("web-%d", i)), mkPod("shop", fmt.Sprintf("web-%d", i)))
	}
	client := fake.NewClientset(objs...)
	for _, total := range []int{1, 3} {
		seen := map[string]int{}
		for idx := range total {
			sh := shard.Shard{Index: idx, Total: total}
			sels := []Selection{
				{Scope: Scope{AllNamespaces: true}, Selector: mustCompile(t, []string{"web"}, nil, []string{"^app$"}, nil)},
				{Scope: Scope{Namespace: "shop"}, Selector: mustCompile(t, nil, nil, []string{"^app$"}, nil)},
			}
			for i := range sels {
				sels[i].Selector.Shard = sh
			}
			list, failed, err := Select(context.Background(), client, sels)
			targets := list.All()
			if err != nil || len(failed) > 0 {
				t.Fatalf("Select: %v %v", err, failed)
			}
			if total > 1 && (len(targets) == 0 || len(targets) == 80) {
				t.Fatalf("%s selected %d of 80 pods", sh, len(targets))
			}
			for _, tg := range targets {
				if total > 1 && shard.Of(tg.Namespace, tg.Pod, total) != idx {
					t.Fatalf("%s selected %s, of shard %d", sh, tg.Key(), shard.Of(tg.Namespace, tg.Pod, total))
				}
				seen[tg.Key()]++
			}
		}
		if len(seen) != 80 {
			t.Fatalf("%d shards selected %d of 80 pods", total, len(seen))
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("%s selected %d times by %d shards", k, n, total)
			}
		}
	}
}

// A shard on a narrowing selector counts too: And keeps it, and Empty does not drop it.
func TestSelectsShardOfAnd(t *testing.T) {
	narrow := Selector{Shard: shard.Shard{Index: shard.Of("ns", "p", 2), Total: 2}}
	if narrow.Empty() {
		t.Fatal("a selector with a shard is not empty")
	}
	s := mustCompile(t, []string{"p"}, nil, nil, nil).And(narrow)
	other := shard.Of("ns", "p", 2) ^ 1
	if !s.Selects("ns", "p") {
		t.Fatal("ns/p is of the narrowing shard")
	}
	s2 := mustCompile(t, []string{"p"}, nil, nil, nil).And(Selector{Shard: shard.Shard{Index: other, Total: 2}})
	if s2.Selects("ns", "p") {
		t.Fatal("ns/p selected by a shard it is not of")
	}
}

// A list that returns a pod twice (a page served again) selects it once, with one selection as
// with several.
func TestSelectListedTwice(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprint(n, " selections"), func(t *testing.T) {
			client := fake.NewClientset()
			client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				a, b := mkPod("ns", "a"), mkPod("ns", "b")
				return true, &corev1.PodList{Items: []corev1.Pod{*a, *a, *b, *b}}, nil
			})
			var sels []Selection
			for range n {
				sels = append(sels, Selection{Scope: Scope{Namespace: "ns"}, Selector: mustCompile(t, nil, nil, []string{"^app$"}, nil)})
			}
			list, _, err := Select(context.Background(), client, sels)
			targets := list.All()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tg := range targets {
				got = append(got, tg.Key())
			}
			if strings.Join(got, " ") != "ns/a/app ns/b/app" {
				t.Fatalf("got %v", got)
			}
		})
	}
}
