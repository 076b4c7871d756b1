package follow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/shard"
)

func compiled(t *testing.T, pods, containers []string) podselect.Selector {
	t.Helper()
	s, err := podselect.Compile(pods, nil, containers, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Several selections: one informer each, a container that two select is followed once, with
// the containers either selects, and until neither selects its pod.
func TestSeveralSelections(t *testing.T) {
	a := newPod("ns", "a", running("app", "c1"), running("side", "c2"))
	a.Labels = map[string]string{"tier": "db"}
	b := newPod("ns", "b", running("app", "c3"), running("side", "c4"))
	b.Labels = map[string]string{"tier": "web"}
	c := newPod("other", "c", running("app", "c5"))
	h := start(t, []runtime.Object{a, b, c}, func(h *harness) {
		h.watchesWanted = 3
		h.f.Selections = []podselect.Selection{
			{Scope: podselect.Scope{Namespace: "ns", LabelSelector: "tier=db"}, Selector: compiled(t, nil, []string{"^app$"})},
			{Scope: podselect.Scope{Namespace: "ns"}, Selector: compiled(t, []string{"^a$"}, []string{"app|side"})},
			{Scope: podselect.Scope{Namespace: "other"}, Selector: compiled(t, nil, nil)},
		}
	})
	var got []string
	for range 3 {
		got = append(got, h.next().t.Key())
	}
	h.none()
	sort.Strings(got)
	if want := "ns/a/app ns/a/side other/c/app"; strings.Join(got, " ") != want {
		t.Fatalf("followed %v, want %s", got, want)
	}

	// No longer selected by the first selection (its label changed), still by the second: the
	// container is still followed, its stream not interrupted.
	a.Labels = map[string]string{"tier": "web"}
	if _, err := h.client.CoreV1().Pods("ns").Update(context.Background(), a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the first selection to let go of ns/a", func() bool {
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		return !h.f.containers["ns/a/app"].by[0]
	})
	time.Sleep(100 * time.Millisecond)
	h.f.mu.Lock()
	ct := h.f.containers["ns/a/app"]
	h.f.mu.Unlock()
	select {
	case <-ct.gone:
		t.Fatal("ns/a/app stopped being followed while the second selection still selects it")
	default:
	}
	h.none()

	// Deleted: neither selects it, it is done.
	h.delete(a)
	h.waitGone("ns/a/app")
	h.waitGone("ns/a/side")
	h.f.mu.Lock()
	_, stillC := h.f.containers["other/c/app"]
	h.f.mu.Unlock()
	if !stillC {
		t.Fatal("other/c/app is no longer followed")
	}
}

// With several selections, a namespace that cannot be read is named and the others followed.
func TestSeveralSelectionsForbiddenNamespace(t *testing.T) {
	p := newPod("ns", "p", running("app", "c1"))
	h := start(t, []runtime.Object{p}, func(h *harness) {
		h.client.PrependReactor("*", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
			if action.GetNamespace() == "closed" {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no"))
			}
			return false, nil, nil
		})
		h.f.Selections = []podselect.Selection{
			{Scope: podselect.Scope{Namespace: "closed"}},
			{Scope: podselect.Scope{Namespace: "ns"}},
		}
	})
	if c := h.next(); c.t.Key() != "ns/p/app" {
		t.Fatalf("followed %s", c.t.Key())
	}
	h.stop()
	if len(h.nsErrs) != 1 || h.nsErrs[0].Namespace != "closed" {
		t.Fatalf("namespace errors %v, want closed", h.nsErrs)
	}
}

// A pod whose labels move from one selection to another is followed on: the informer of the
// first says it went, the other's says it came, in either order.
func TestPodMovesBetweenSelections(t *testing.T) {
	p := newPod("ns", "p", running("app", "c1"))
	p.Labels = map[string]string{"tier": "db"}
	h := start(t, []runtime.Object{p}, func(h *harness) {
		h.watchesWanted = 2
		h.f.Selections = []podselect.Selection{
			{Scope: podselect.Scope{Namespace: "ns", LabelSelector: "tier=db"}},
			{Scope: podselect.Scope{Namespace: "ns", LabelSelector: "tier=web"}},
		}
	})
	if c := h.next(); c.t.Key() != "ns/p/app" || !c.follow {
		t.Fatalf("followed %s (follow %v)", c.t.Key(), c.follow)
	}
	p.Labels = map[string]string{"tier": "web"}
	if _, err := h.client.CoreV1().Pods("ns").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Whichever informer speaks first, the container ends up followed for the second selection:
	// the same stream if the second selection took it before the first let go of it, a new one
	// (after the old one drained) if not.
	followedFor(t, h, "ns/p/app", 1)

	// Selected by none, then again: followed again once the old stream let go of the file.
	for _, tier := range []string{"none", "db"} {
		p.Labels = map[string]string{"tier": tier}
		if _, err := h.client.CoreV1().Pods("ns").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if tier == "none" {
			h.waitGone("ns/p/app")
		}
	}
	followedFor(t, h, "ns/p/app", 0)
}

// followedFor waits until a container is followed, with a stream open, for selection sel.
func followedFor(t *testing.T, h *harness, key string, sel int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.f.mu.Lock()
		ct := h.f.containers[key]
		ok := ct != nil && ct.by[sel] && !ct.retired() && h.f.open == 1
		h.f.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not followed for selection %d", key, sel)
		}
		h.clock.Step(DefaultDrainAfter)
		select {
		case <-h.calls:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A follower of one shard follows the containers of that shard's pods only, those created while
// it runs too.
func TestFollowsOnlyItsShard(t *testing.T) {
	const total = 3
	var objs []runtime.Object
	want := map[string]bool{}
	sh := shard.Shard{Index: 1, Total: total}
	for i := range 12 {
		name := fmt.Sprintf("p%d", i)
		objs = append(objs, newPod("ns", name, running("app", fmt.Sprintf("c%d", i))))
		if shard.Of("ns", name, total) == sh.Index {
			want["ns/"+name+"/app"] = true
		}
	}
	if len(want) == 0 || len(want) == 12 {
		t.Fatalf("the names put %d of 12 pods in %s: choose others", len(want), sh)
	}
	h := start(t, objs, func(h *harness) { h.f.Selector = podselect.Selector{Shard: sh} })
	got := map[string]bool{}
	for range want {
		got[h.next().t.Key()] = true
	}
	h.none()
	for k := range want {
		if !got[k] {
			t.Fatalf("followed %v, want %v", got, want)
		}
	}
	// Pods created later: only those of the shard.
	var later []string
	for i := 12; len(later) < 2; i++ {
		name := fmt.Sprintf("p%d", i)
		if _, err := h.client.CoreV1().Pods("ns").Create(context.Background(), newPod("ns", name, running("app", fmt.Sprintf("c%d", i))), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if shard.Of("ns", name, total) == sh.Index {
			later = append(later, "ns/"+name+"/app")
		}
	}
	for range later {
		if k := h.next().t.Key(); !slices.Contains(later, k) {
			t.Fatalf("followed %s, not of %s", k, sh)
		}
	}
	h.none()
}
