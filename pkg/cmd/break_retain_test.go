package cmd

import (
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
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
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// Attack: -A, the cluster-wide list of the retention serves its first page and is then
// forbidden (RBAC changed, a webhook/authorizer flake on the continue request). ListPresence falls
// back to namespace by namespace, but the first page's pod names stay in p.pods. A namespace whose
// own list then fails keeps the partial names of page 1 and is taken as listed completely: a pod
// of page 2 that exists is taken for gone and its log compressed.
func TestBreakRetainPartialClusterListPollutesPresence(t *testing.T) {
	dir := t.TempDir()
	d, err := store.Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, pod := range []string{"first", "second"} {
		l, err := d.OpenLog("b", pod, "app")
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
	client := fake.NewClientset()
	var clusterCalls atomic.Int64
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch a.GetNamespace() {
		case "":
			if clusterCalls.Add(1) == 1 {
				return true, &corev1.PodList{ListMeta: metav1.ListMeta{Continue: "page2"},
					Items: []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "first"}}}}, nil
			}
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
		default:
			// the namespace's own list fails (forbidden, or a 500): it must be skipped
			return true, nil, apierrors.NewInternalError(os.ErrDeadlineExceeded)
		}
	})
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	o := NewOptions(streams)
	o.selections = []podselect.Selection{{Scope: podselect.Scope{AllNamespaces: true}}}
	o.Compress = true
	m, err := o.maintain(context.Background(), client, d)
	t.Logf("maintain: %+v, err %v", m, err)
	if m != nil && (len(m.Gone) > 0 || len(m.Compressed) > 0) {
		t.Fatalf("namespace b could not be listed, yet gone %v, compressed %v (pod b/second exists: it was on page 2)", m.Gone, m.Compressed)
	}
}

func runCmd(t *testing.T, srv *logserver.Server, dir string, extra ...string) error {
	t.Helper()
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	c := NewCmd(streams)
	c.SetArgs(append([]string{"--kubeconfig", srv.Kubeconfig(), "-n", "default", "-d", dir, "-o", "json"}, extra...))
	return c.ExecuteContext(context.Background())
}

func gapsOf(t *testing.T, dir, pod, container string) []store.Gap {
	t.Helper()
	inv, err := store.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Gap
	for _, l := range inv.Logs {
		if l.Namespace == "default" && l.Pod == pod && l.Container == container {
			out = append(out, l.Gaps...)
		}
	}
	return out
}

// Attack: a pod deleted after a run and created again under its name (a StatefulSet pod
// recreated) is a "pod replaced by one of the same name": the next run reports what the old pod
// logged after the checkpoint as a gap. With --compress, a run in between that finds the name gone
// compresses the log; the pod back starts a file of its own with no checkpoint, and the old pod's
// unexported tail is lost without a gap. The same sequence without --compress (or with --retain
// only) reports it.
func TestBreakRetainCompressHidesReplacedPodGap(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, compress := range []bool{false, true} {
		name := "plain"
		if compress {
			name = "compress"
		}
		t.Run(name, func(t *testing.T) {
			srv := logserver.New(t)
			dir := t.TempDir()
			srv.AddPod("default", "p0", "c")
			srv.Append("default", "p0", "c", logserver.Entry{Time: at, Text: "old-1"})
			if err := runCmd(t, srv, dir); err != nil {
				t.Fatal(err)
			}
			// logged after the run, never exported: the pod is deleted
			srv.Append("default", "p0", "c", logserver.Entry{Time: at.Add(time.Second), Text: "old-2 (lost)"})
			srv.Delete("default", "p0")
			var extra []string
			if compress {
				extra = []string{"--compress"}
			} else {
				extra = []string{"--retain", "720h"}
			}
			if err := runCmd(t, srv, dir, extra...); err != nil {
				t.Fatal(err)
			}
			srv.AddPod("default", "p0", "c")
			srv.Append("default", "p0", "c", logserver.Entry{Time: at.Add(2 * time.Second), Text: "new-1"})
			err := runCmd(t, srv, dir, extra...)
			t.Logf("third run: %v", err)
			gaps := gapsOf(t, dir, "p0", "c")
			t.Logf("gaps: %+v", gaps)
			if len(gaps) == 0 {
				t.Fatalf("the old pod's lines after the checkpoint (old-2) are lost, and no gap says so")
			}
		})
	}
}

func readGz(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Attack: a pod replaced under its name between two --compress runs is never taken for gone (its
// file goes on); a pod deleted and recreated between runs gets its own log beside the archive,
// numbered on, and each line the cluster served is stored once (passes).
func TestBreakRetainNameReusedAcrossRuns(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	srv := logserver.New(t)
	dir := t.TempDir()
	srv.AddPod("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: at, Text: "a"})
	if err := runCmd(t, srv, dir, "--compress", "--retain", "720h"); err != nil {
		t.Fatal(err)
	}
	srv.Replace("default", "p0")
	srv.Append("default", "p0", "c", logserver.Entry{Time: at.Add(time.Second), Text: "b"})
	if err := runCmd(t, srv, dir, "--compress", "--retain", "720h"); err != nil {
		t.Fatal(err)
	}
	pd := filepath.Join(dir, "default", "p0")
	if b, _ := os.ReadFile(filepath.Join(pd, "c.log")); string(b) != "a\nb\n" {
		t.Fatalf("replaced pod: c.log %q", b)
	}
	srv.Delete("default", "p0")
	if err := runCmd(t, srv, dir, "--compress", "--retain", "720h"); err != nil {
		t.Fatal(err)
	}
	srv.AddPod("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: at.Add(2 * time.Second), Text: "c"})
	if err := runCmd(t, srv, dir, "--compress", "--retain", "720h"); err != nil {
		t.Fatal(err)
	}
	srv.Delete("default", "p0")
	if err := runCmd(t, srv, dir, "--compress", "--retain", "720h"); err != nil {
		t.Fatal(err)
	}
	es, _ := os.ReadDir(pd)
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, []string{"c.1.log.gz", "c.2.log.gz"}) {
		t.Fatalf("files %v", got)
	}
	if a, b := readGz(t, filepath.Join(pd, "c.1.log.gz")), readGz(t, filepath.Join(pd, "c.2.log.gz")); a != "a\nb\n" || b != "c\n" {
		t.Fatalf("archives %q %q", a, b)
	}
}
