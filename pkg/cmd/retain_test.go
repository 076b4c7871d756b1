package cmd

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

func TestValidateRetention(t *testing.T) {
	for _, tc := range []struct {
		retain   time.Duration
		compress bool
		follow   bool
		err      string // "" for none
	}{
		{},
		{retain: 720 * time.Hour, compress: true},
		{follow: true},
		{retain: -time.Hour, err: "--retain must be positive"},
		{retain: time.Hour, follow: true, err: "--retain and --compress apply to one-shot runs"},
		{compress: true, follow: true, err: "--retain and --compress apply to one-shot runs"},
	} {
		o := &Options{Retain: tc.retain, Compress: tc.compress, Follow: tc.follow}
		err := o.validateRetention()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%+v: %v", tc, err)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("%+v: %v, want %q", tc, err, tc.err)
		}
	}
}

// Only what a run can know is gone is marked gone: in the namespaces the run covers, pods absent
// from a listing of every pod there (a pod a label selector or pattern leaves out is still
// there), and nothing in a namespace that could not be listed.
func TestMaintainMarksOnlyWhatIsKnownGone(t *testing.T) {
	pods := []runtime.Object{
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "unselected", Labels: map[string]string{"app": "other"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "here"}},
	}
	for _, tc := range []struct {
		name       string
		selections []podselect.Selection
		forbidden  string // a namespace whose pods may not be listed
		gone       []string
	}{
		{name: "-n a -l app=x", selections: []podselect.Selection{{Scope: podselect.Scope{Namespace: "a", LabelSelector: "app=x"}}},
			gone: []string{"a/gone/app"}},
		{name: "-n b", selections: []podselect.Selection{{Scope: podselect.Scope{Namespace: "b"}}},
			gone: []string{"b/gone/app"}},
		{name: "-A", selections: []podselect.Selection{{Scope: podselect.Scope{AllNamespaces: true}}},
			gone: []string{"a/gone/app", "b/gone/app", "c/gone/app"}},
		{name: "-A, b forbidden", selections: []podselect.Selection{{Scope: podselect.Scope{AllNamespaces: true}}}, forbidden: "b",
			gone: []string{"a/gone/app", "c/gone/app"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := store.Open(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, k := range [][2]string{{"a", "gone"}, {"a", "unselected"}, {"b", "gone"}, {"b", "here"}, {"c", "gone"}} {
				l, err := d.OpenLog(k[0], k[1], "app")
				if err != nil {
					t.Fatal(err)
				}
				_, _ = l.Write([]byte("x\n"))
				l.EndLine()
				if err := l.Commit(store.Checkpoint{Instance: "i", Lines: 1, Last: time.Unix(1, 0)}); err != nil {
					t.Fatal(err)
				}
				_ = l.Close()
			}
			client := fake.NewClientset(pods...)
			client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if ns := a.GetNamespace(); ns == tc.forbidden || (tc.forbidden != "" && ns == "") {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
				}
				return false, nil, nil
			})
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			o := NewOptions(streams)
			o.selections, o.Compress = tc.selections, true
			m, err := o.maintain(context.Background(), client, d)
			if tc.forbidden == "" && err != nil {
				t.Fatal(err)
			}
			if tc.forbidden != "" && (err == nil || !strings.Contains(err.Error(), "namespace "+tc.forbidden)) {
				t.Fatalf("a namespace that cannot be listed: %v", err)
			}
			if !slices.Equal(m.Gone, tc.gone) || !slices.Equal(m.Compressed, tc.gone) {
				t.Fatalf("gone %v, compressed %v, want %v", m.Gone, m.Compressed, tc.gone)
			}
		})
	}
}
