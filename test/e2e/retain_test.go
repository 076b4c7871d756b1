package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// zcat reads a file with the system's zcat, as an operator would.
func zcat(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command("zcat", file).Output()
	if err != nil {
		t.Fatalf("zcat %s: %v", file, err)
	}
	return string(out)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// --compress stores the log of a pod that is gone as CONTAINER.1.log.gz, readable by zcat, and
// --retain removes it once the pod has been gone that long. A pod replaced under the same name
// continues its file and is neither compressed nor removed; a pod the run does not select but
// that is there is not gone; a pod back after its log was compressed starts a file beside the
// archive. The run journal is trimmed by the same retention.
func TestRetentionAndCompression(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	createPod(t, ns, pod{name: "redis-0", containers: []container{{name: "redis", log: newLog(t).add(at(0, 0), "old-1", "old-2")}}})
	createPod(t, ns, pod{name: "gone", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "bye")}}})
	createPod(t, ns, pod{name: "phoenix", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "first life")}}})
	createPod(t, ns, pod{name: "other", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "not selected")}}})
	export(t, "-n", ns, "-d", dir)

	// redis-0 is replaced under its name; gone and phoenix are deleted; other stays, unselected.
	deletePod(t, ns, "redis-0")
	createPod(t, ns, pod{name: "redis-0", containers: []container{{name: "redis", log: newLog(t).add(at(60, 0), "new-1")}}})
	deletePod(t, ns, "gone")
	deletePod(t, ns, "phoenix")
	selected := []string{"-n", ns, "-d", dir, "-p", "redis", "-p", "gone", "-p", "phoenix", "--compress", "--retain", "3s"}
	s := export(t, selected...)
	if s.Retention == nil || !slices.Equal(s.Retention.Gone, []string{ns + "/gone/app", ns + "/phoenix/app"}) ||
		!slices.Equal(s.Retention.Compressed, s.Retention.Gone) || len(s.Retention.Removed) > 0 {
		t.Fatalf("first run with --compress: %+v", s.Retention)
	}
	assertFile(t, filepath.Join(dir, ns, "redis-0", "redis.log"), lines("old-1", "old-2", "new-1"))
	assertFile(t, filepath.Join(dir, ns, "other", "app.log"), lines("not selected"))
	for p, want := range map[string]string{"gone": "bye", "phoenix": "first life"} {
		if got := dirNames(t, filepath.Join(dir, ns, p)); !slices.Equal(got, []string{"app.1.log.gz"}) {
			t.Fatalf("%s's directory holds %v", p, got)
		}
		if got := zcat(t, filepath.Join(dir, ns, p, "app.1.log.gz")); got != lines(want) {
			t.Fatalf("zcat %s: %q", p, got)
		}
	}
	_, st := status(t, dir)
	if l := storedLog(t, st, ns, "gone", "app"); !l.Compressed || l.File != filepath.Join(dir, ns, "gone", "app.1.log.gz") || l.Lines != 1 {
		t.Fatalf("status of the compressed log: %+v", l)
	}
	if l := storedLog(t, st, ns, "redis-0", "redis"); l.Compressed || l.Lines != 3 {
		t.Fatalf("status of the replaced pod's log: %+v", l)
	}
	runsBefore := len(st.Runs)

	// phoenix comes back under its name: a file of its own, beside the archive.
	createPod(t, ns, pod{name: "phoenix", containers: []container{{name: "app", log: newLog(t).add(at(120, 0), "second life")}}})
	time.Sleep(4 * time.Second)
	s = export(t, selected...)
	if s.Retention == nil || !slices.Equal(s.Retention.Removed, []string{ns + "/gone/app"}) || len(s.Retention.Compressed) > 0 {
		t.Fatalf("run after the retention: %+v", s.Retention)
	}
	if _, err := os.Stat(filepath.Join(dir, ns, "gone")); !os.IsNotExist(err) {
		t.Fatalf("the gone pod's directory is still there (%v): %v", err, dirNames(t, filepath.Join(dir, ns, "gone")))
	}
	if strings.Contains(readFile(t, checkpointFile(dir, ns)), `"pod":"gone"`) {
		t.Fatalf("the gone pod's checkpoint is kept:\n%s", readFile(t, checkpointFile(dir, ns)))
	}
	assertFile(t, filepath.Join(dir, ns, "phoenix", "app.log"), lines("second life"))
	if got := zcat(t, filepath.Join(dir, ns, "phoenix", "app.1.log.gz")); got != lines("first life") {
		t.Fatalf("phoenix's archive after it came back: %q", got)
	}
	assertFile(t, filepath.Join(dir, ns, "redis-0", "redis.log"), lines("old-1", "old-2", "new-1"))
	assertFile(t, filepath.Join(dir, ns, "other", "app.log"), lines("not selected"))

	// The journal keeps only this run: the two before ended more than 3s ago.
	_, st = status(t, dir)
	if len(st.Runs) != 1 || runsBefore < 2 {
		t.Fatalf("journal after the retention: %d runs (%d before): %+v", len(st.Runs), runsBefore, st.Runs)
	}
	for _, l := range st.Logs {
		if l.Pod == "gone" {
			t.Fatalf("status still lists %+v", l)
		}
	}
	var phoenix []string
	for _, l := range st.Logs {
		if l.Pod == "phoenix" {
			phoenix = append(phoenix, fmt.Sprintf("%s %v %d", filepath.Base(l.File), l.Compressed, l.Lines))
		}
	}
	if !slices.Equal(phoenix, []string{"app.1.log.gz true 1", "app.log false 1"}) {
		t.Fatalf("status of the pod that came back, beside its predecessor's archive: %v", phoenix)
	}

	// --retain and --compress are one-shot: a follower refuses them.
	if res := logexport(t, "-n", ns, "-d", t.TempDir(), "-f", "--retain", "1h"); res.code == 0 || !strings.Contains(res.stderr, "--follow") {
		t.Fatalf("follow with --retain: exit %d, %q", res.code, res.stderr)
	}
}

// The CronJob overlays keep the volume bounded: a month of logs of pods that are gone, compressed.
func TestCronJobOverlaysRetain(t *testing.T) {
	for _, overlay := range []string{"cronjob", "namespaced"} {
		args := renderedCronJob(t, overlay).args
		if !slices.Contains(args, "--retain=720h") || !slices.Contains(args, "--compress") {
			t.Errorf("the %s overlay's CronJob runs %v, without --retain=720h --compress", overlay, args)
		}
	}
}
