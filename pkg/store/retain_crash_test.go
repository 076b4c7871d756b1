package store_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// maintainOnce opens dir and runs Maintain on ns1 with only the pods in present there.
func maintainOnce(dir string, present []string, r store.Retention, opts ...store.Option) (*store.Maintained, error) {
	d, err := store.Open(dir, false, opts...)
	if err != nil {
		return nil, err
	}
	m, err := d.Maintain("ns1", func(p string) bool { return slices.Contains(present, p) }, r)
	return m, errorsJoin(err, d.Close())
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func gunzipFile(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(zr)
	return string(b), err
}

func podFiles(dir, c string) []string {
	es, _ := os.ReadDir(filepath.Join(dir, filepath.FromSlash(filepath.Dir(c))))
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// checkArchived checks that a gone container's log is stored compressed, once: the pod's
// directory holds app.1.log.gz alone, and it holds the whole log.
func checkArchived(dir, c, want string) error {
	if got := podFiles(dir, c); !slices.Equal(got, []string{"app.1.log.gz"}) {
		return fmt.Errorf("%s: the pod's directory holds %v", c, got)
	}
	got, err := gunzipFile(filepath.Join(dir, filepath.FromSlash(c)+".1.log.gz"))
	if err != nil || got != want {
		return fmt.Errorf("%s: the archive holds %q (%v), want %q", c, got, err, want)
	}
	return nil
}

// TestCrashRetention checks every state a crash could leave while Maintain compresses the logs of
// two pods that are gone, and then while it removes them: the next run finishes what was begun by
// itself, with no log lost, none stored twice and nothing refused; a pod back under its name
// after a crash during compression finds each line once, in the archive or in its log.
func TestCrashRetention(t *testing.T) {
	perPoint := *crashStates
	if testing.Short() {
		perPoint = min(perPoint, 6)
	}
	src, client := serveSource(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(*crashSeed, 0))
	src.grow(1, 3, "ns1/a/app", "ns1/b/app", "ns1/c/app")
	if err := src.export(client, dir, "run-1", false); err != nil {
		t.Fatal(err)
	}
	{
		d, err := store.Open(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.RecordGaps("ns1", "b", "app", []store.Gap{{Reason: "lost"}}); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	want := src.want(false)
	now := time.Now()
	compress := store.Retention{Now: now, Retain: time.Hour, Compress: true}
	remove := store.Retention{Now: now.Add(2 * time.Hour), Retain: time.Hour, Compress: true}
	opts := []store.Option{store.SyncFSMin(math.MaxInt)}

	for _, phase := range []struct {
		name    string
		r       store.Retention
		recover func(crashed string) error
	}{
		{name: "compress", r: compress, recover: func(crashed string) error {
			// The pods are still gone: the next run finishes the compression.
			again := filepath.Join(t.TempDir(), "again")
			if err := os.CopyFS(again, os.DirFS(crashed)); err != nil {
				return err
			}
			later := compress
			later.Now = now.Add(time.Minute)
			if _, err := maintainOnce(again, []string{"a"}, later, store.NoSync()); err != nil {
				return err
			}
			for _, c := range []string{"ns1/b/app", "ns1/c/app"} {
				if err := checkArchived(again, c, want[c]); err != nil {
					return err
				}
			}
			if err := compareFiles(again, map[string]string{"ns1/a/app": want["ns1/a/app"]}); err != nil {
				return err
			}
			if inv, err := store.Inspect(again); err != nil || len(inv.Warnings) > 0 {
				return fmt.Errorf("status: %v %+v", err, inv)
			}
			// Or c is back under its name (a new instance, its earlier ones no longer served):
			// its old lines are in the archive or at the start of its log, once.
			return podBack(crashed, want)
		}},
		{name: "remove", r: remove, recover: func(crashed string) error {
			if _, err := maintainOnce(crashed, []string{"a"}, remove, store.NoSync()); err != nil {
				return err
			}
			for _, c := range []string{"ns1/b/app", "ns1/c/app"} {
				if got := podFiles(crashed, c); len(got) > 0 {
					return fmt.Errorf("%s: the pod's directory still holds %v", c, got)
				}
			}
			if err := compareFiles(crashed, map[string]string{"ns1/a/app": want["ns1/a/app"]}); err != nil {
				return err
			}
			inv, err := store.Inspect(crashed)
			if err != nil || len(inv.Warnings) > 0 {
				return fmt.Errorf("status: %v %+v", err, inv)
			}
			if len(inv.Logs) != 1 || inv.Logs[0].Pod != "a" {
				return fmt.Errorf("status lists %+v", inv.Logs)
			}
			return nil
		}},
	} {
		rec, err := store.NewRecorder(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := maintainOnce(dir, []string{"a"}, phase.r, append(opts, rec.Option())...); err != nil {
			t.Fatalf("%s: %v", phase.name, err)
		}
		n := 0
		rec.CrashStates(perPoint, rng, func(st store.CrashState) bool {
			n++
			crashed := materialize(t, st)
			if err := phase.recover(crashed); err != nil {
				t.Errorf("%s, %s\nthe next run: %v\nrecorded operations:\n%s", phase.name, st, err, rec.Trace())
				return false
			}
			os.RemoveAll(filepath.Dir(crashed))
			return true
		})
		t.Logf("%s: %d operations, %d crash states, each recovered", phase.name, rec.Ops(), n)
		if t.Failed() {
			return
		}
	}
}

// podBack exports c, back as a new instance with new lines, into a copy of a crash state, and
// checks that its archive (if the compression got that far) and its log hold each line once.
func podBack(crashed string, want map[string]string) error {
	dir := filepath.Join(filepath.Dir(crashed), "back")
	if err := os.CopyFS(dir, os.DirFS(crashed)); err != nil {
		return err
	}
	src := &source{logs: map[string][]line{}, from: map[string]int{}, rotated: map[string]bool{}}
	// The same lines as before, then the new instance's.
	src.grow(1, 3, "ns1/c/app")
	src.rotate("ns1/c/app")
	src.grow(9, 2, "ns1/c/app")
	srv := httptest.NewServer(src)
	defer srv.Close()
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, QPS: -1})
	d, err := store.Open(dir, false, store.NoSync())
	if err != nil {
		return err
	}
	e := &export.Exporter{Client: client, Dest: d, Options: export.Options{}}
	targets := src.targets()
	var errs []string
	for _, r := range e.ExportAll(context.Background(), targets, 1, nil) {
		if r.Err != nil {
			errs = append(errs, r.Err.Error())
		}
	}
	if err := d.Close(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("export of the pod back: %s", strings.Join(errs, "; "))
	}
	log, err := os.ReadFile(filepath.Join(dir, "ns1", "c", "app.log"))
	if err != nil {
		return err
	}
	archived, err := gunzipFile(filepath.Join(dir, "ns1", "c", "app.1.log.gz"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	all := src.want(false)["ns1/c/app"]
	if archived+string(log) != all {
		return fmt.Errorf("the pod back: archive %q, log %q, want %q in all (files %v)", archived, log, all, podFiles(dir, "ns1/c/app"))
	}
	if archived != "" && archived != want["ns1/c/app"] {
		return fmt.Errorf("the archive holds %q", archived)
	}
	return nil
}
