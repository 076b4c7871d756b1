package follow

import (
	"context"
	"errors"
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
