package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A StatefulSet-style pod replaced by a new one of the same name continues the same file.
func TestReusedPodName(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	old := newLog(t).add(at(0, 0), "old-1", "old-2")
	createPod(t, ns, pod{name: "redis-0", containers: []container{{name: "redis", log: old}}})
	export(t, "-n", ns, "-d", dir)
	deletePod(t, ns, "redis-0")

	fresh := newLog(t).add(at(60, 0), "new-1", "new-2")
	createPod(t, ns, pod{name: "redis-0", containers: []container{{name: "redis", log: fresh}}})
	s := export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "redis-0", "redis"); c.Lines != 2 {
		t.Fatalf("new pod: %+v", c)
	}
	file := filepath.Join(dir, ns, "redis-0", "redis.log")
	assertFile(t, file, lines("old-1", "old-2", "new-1", "new-2"))
	export(t, "-n", ns, "-d", dir)
	assertFile(t, file, lines("old-1", "old-2", "new-1", "new-2"))
}

// The files (and checkpoints) of deleted pods are left exactly as they were.
func TestDeletedPodUntouched(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	createPod(t, ns, pod{name: "gone", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "bye")}}})
	stay := newLog(t).add(at(0, 0), "hi")
	createPod(t, ns, pod{name: "stay", containers: []container{{name: "app", log: stay}}})
	export(t, "-n", ns, "-d", dir)
	deletePod(t, ns, "gone")

	file := filepath.Join(dir, ns, "gone", "app.log")
	before, cp := snapshot(t, file), checkpointLine(t, dir, ns, "gone", "app")
	stay.add(at(1, 0), "again")
	s := export(t, "-n", ns, "-d", dir)
	sameList(t, "exported", exported(s), []string{ns + "/stay/app"})
	if after := snapshot(t, file); after != before {
		t.Fatalf("deleted pod's file changed:\n%s\n%s", before, after)
	}
	if after := checkpointLine(t, dir, ns, "gone", "app"); after != cp {
		t.Fatalf("deleted pod's checkpoint changed:\n%s\n%s", cp, after)
	}
	assertFile(t, filepath.Join(dir, ns, "stay", "app.log"), lines("hi", "again"))
}

func snapshot(t *testing.T, paths ...string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %s %q\n", p, fi.Size(), fi.ModTime(), readFile(t, p))
	}
	return b.String()
}

// A 2 MiB line that the runtime wrote as many partial (P) CRI entries is stored as one line, and
// runs after it resume exactly.
func TestLongPartialLine(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	chunk := strings.Repeat("x", 16<<10)
	var b strings.Builder
	ts := at(0, 0).Format(criLayout)
	for i := 0; i < 128; i++ {
		fmt.Fprintf(&b, "%s stdout P %s\n", ts, chunk)
	}
	fmt.Fprintf(&b, "%s stdout F end\n", ts)
	log := newLog(t).add(at(0, 0), "before").raw(b.String()).add(at(0, 0), "after")
	createPod(t, ns, pod{name: "big", containers: []container{{name: "app", log: log}}})
	export(t, "-n", ns, "-d", dir)
	long := strings.Repeat(chunk, 128) + "end"
	file := filepath.Join(dir, ns, "big", "app.log")
	assertFile(t, file, lines("before", long, "after"))
	log.add(at(0, 0), "later")
	s := export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "big", "app"); c.Lines != 1 {
		t.Fatalf("resume after a long line: %+v", c)
	}
	assertFile(t, file, lines("before", long, "after", "later"))
}

// bigPod creates a pod whose log takes the API a few seconds to serve, and returns the expected
// export.
func bigPod(t *testing.T, ns, name string, n int) string {
	t.Helper()
	var b, want strings.Builder
	pad := strings.Repeat("p", 100)
	for i := 0; i < n; i++ {
		// Many lines share each second, so that resumes land inside a second.
		ts := at(i/5000, i%7).Format(criLayout)
		fmt.Fprintf(&b, "%s stdout F line %d %s\n", ts, i, pad)
		fmt.Fprintf(&want, "line %d %s\n", i, pad)
	}
	log := newLog(t).raw(b.String())
	createPod(t, ns, pod{name: name, containers: []container{{name: "app", log: log}}})
	return want.String()
}

// bigExport makes a namespace with bigPod in it and returns it, an empty export directory, the
// file the pod's log is exported to and what it must end up holding.
func bigExport(t *testing.T) (ns, dir, file, want string) {
	t.Helper()
	ns, dir = newNamespace(t), t.TempDir()
	want = bigPod(t, ns, "big", 120000)
	return ns, dir, filepath.Join(dir, ns, "big", "app.log"), want
}

// waitSize waits until a run has written min bytes of the log at path.
func waitSize(t *testing.T, path string, min int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if writtenSize(path) >= min {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never reached %d bytes", path, min)
}

// writtenSize is how much of the log at path a run has written: a new log has its name only from
// its first checkpoint on (every 32 MiB, or at the end), and is written as .NAME.new before.
func writtenSize(path string) int64 {
	for _, p := range []string{path, filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")} {
		if fi, err := os.Stat(p); err == nil {
			return fi.Size()
		}
	}
	return 0
}

// A run killed with SIGKILL in the middle of writing leaves the directory so that the next run
// ends with exactly the right content: killed before the log's first checkpoint (it is still
// under its temporary name), and killed with bytes written after a checkpoint (which a SIGINT
// saved in between, the log being shorter than a checkpoint's interval).
func TestSIGKILLThenResume(t *testing.T) {
	ns, dir, file, want := bigExport(t)
	// stop starts a run and sends it sig once it has written past min bytes of the log.
	stop := func(sig syscall.Signal, min int64) {
		t.Helper()
		c := pluginCmd(nil, "-n", ns, "-d", dir)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		waitSize(t, file, min)
		_ = c.Process.Signal(sig)
		_ = c.Wait()
		if writtenSize(file) >= int64(len(want)) {
			t.Fatalf("the run finished before %v; make the log bigger", sig)
		}
	}
	stop(syscall.SIGKILL, 1<<20)
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a log killed before its first checkpoint has its name (%v)", err)
	}
	// The next run writes the log again from its start: past what the killed one left.
	stop(syscall.SIGINT, writtenSize(file)+1<<20)
	saved := readFile(t, file)
	if len(saved) == 0 || !strings.HasPrefix(want, saved) {
		t.Fatalf("after SIGINT the file holds %d bytes, not a prefix of the log", len(saved))
	}
	stop(syscall.SIGKILL, int64(len(saved))+1<<20)
	export(t, "-n", ns, "-d", dir)
	assertFile(t, file, want)
}

// SIGINT stops a run cleanly: it saves its progress, and the next run goes on from there.
func TestSIGINTSavesProgress(t *testing.T) {
	ns, dir, file, want := bigExport(t)
	c := pluginCmd(nil, "-n", ns, "-d", dir)
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitSize(t, file, 1<<20)
	_ = c.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.Process.Kill()
		t.Fatal("no exit within 10s of SIGINT")
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("stderr after SIGINT: %q", stderr.String())
	}
	saved := readFile(t, file)
	if len(saved) < 1<<20 || !strings.HasPrefix(want, saved) {
		t.Fatalf("after SIGINT the file holds %d bytes, not a prefix of the log of at least 1 MiB", len(saved))
	}
	s := export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "big", "app"); c.Bytes != int64(len(want)-len(saved)) {
		t.Fatalf("the run after SIGINT added %d bytes, want %d", c.Bytes, len(want)-len(saved))
	}
	assertFile(t, file, want)
}

// Two runs on one directory: the second fails fast with a clear message; the first is unharmed.
func TestConcurrentRunsLocked(t *testing.T) {
	ns, dir, file, want := bigExport(t)
	first := pluginCmd(nil, "-n", ns, "-d", dir)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	waitSize(t, file, 1)
	start := time.Now()
	res := logexport(t, "-n", ns, "-d", dir)
	if res.code != 1 || !strings.Contains(res.stderr, "locked by another kubectl logexport run") {
		t.Fatalf("second run: exit %d, %q", res.code, res.stderr)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the second run took %s to give up", time.Since(start))
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	assertFile(t, file, want)
}

// --since bounds only the first export of a container, never a resume.
func TestSinceBoundsFirstExportOnly(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	now := time.Now().UTC()
	log := newLog(t).add(now.Add(-2*time.Hour), "ancient").add(now.Add(-10*time.Minute), "recent")
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: log}}})
	export(t, "-n", ns, "-d", dir, "--since", "1h")
	file := filepath.Join(dir, ns, "web", "app.log")
	assertFile(t, file, lines("recent"))
	log.add(now.Add(-5*time.Minute), "newer")
	export(t, "-n", ns, "-d", dir, "--since", "1s")
	assertFile(t, file, lines("recent", "newer"))
}

// A directory written with format version 1 (a checkpoint file per container) is converted by the
// next run, which goes on exactly where the old one stopped.
func TestUpgradeFromFormatVersion1(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "same", "same")
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: log}}})
	export(t, "-n", ns, "-d", dir)

	// The same state as version 1 kept it.
	var cp map[string]any
	if err := json.Unmarshal([]byte(checkpointLine(t, dir, ns, "web", "app")), &cp); err != nil {
		t.Fatal(err)
	}
	delete(cp, "pod")
	delete(cp, "container")
	cp["version"] = 1
	v1, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, ".logexport", "state")
	write := func(p string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(state, ns, "web", "app.json"), v1)
	write(filepath.Join(dir, ".logexport", "meta.json"), []byte(`{"version": 1, "timestamps": false}`))
	if err := os.RemoveAll(filepath.Join(dir, ".logexport", "checkpoints")); err != nil {
		t.Fatal(err)
	}

	log.add(at(0, 0), "same").add(at(1, 0), "next")
	s := export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "web", "app"); c.Lines != 2 {
		t.Fatalf("after the upgrade: %+v", c)
	}
	assertFile(t, filepath.Join(dir, ns, "web", "app.log"), lines("same", "same", "same", "next"))
	var meta struct{ Version int }
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, ".logexport", "meta.json"))), &meta); err != nil || meta.Version != 2 {
		t.Fatalf("meta.json: version %d, %v", meta.Version, err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("the version 1 checkpoints are still there: %v", err)
	}
}
