package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/cmd"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// status runs kubectl logexport status -o json and returns its exit code and what it printed.
func status(t *testing.T, dir string) (int, cmd.Status) {
	t.Helper()
	res := logexport(t, "status", "-d", dir, "-o", "json")
	var st cmd.Status
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("decoding status: %v\n%s", err, res.stdout)
	}
	return res.code, st
}

func storedLog(t *testing.T, st cmd.Status, ns, podName, c string) store.StoredLog {
	t.Helper()
	for _, l := range st.Logs {
		if l.Namespace == ns && l.Pod == podName && l.Container == c {
			return l
		}
	}
	t.Fatalf("%s/%s/%s not in status: %+v", ns, podName, c, st.Logs)
	return store.StoredLog{}
}

// A run that finds a gap (a log rotated away between runs) keeps it beside the log and says so in
// the journal; status shows the gap and exits 1 until a later run ends clean, and the gap stays
// as long as the log.
func TestStatusAfterGap(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "x1").add(at(1, 0), "x2")
	createPod(t, ns, pod{name: "chatty", containers: []container{{name: "app", log: log}}})
	export(t, "-n", ns, "-d", dir, "-p", "chatty")

	code, st := status(t, dir)
	if code != 0 || st.Problem != "" || len(st.Runs) != 1 || st.Runs[0].State != store.RunEnded || *st.Runs[0].ExitCode != 0 {
		t.Fatalf("status after a clean run: exit %d, %+v", code, st)
	}
	if r := st.Runs[0]; r.Mode != "once" || len(r.Selected) != 1 || r.Selected[0].Namespace != ns || strings.Join(r.Selected[0].Pods, ",") != "chatty" ||
		r.Who.Context == "" || r.Who.Host == "" || r.Totals == nil || r.Totals.Lines != 2 || r.Totals.Containers != 1 {
		t.Fatalf("journal entry %+v", r)
	}
	l := storedLog(t, st, ns, "chatty", "app")
	if l.Lines != 2 || l.Bytes != 6 || l.First == nil || !l.First.Equal(at(0, 0)) || l.Last == nil || !l.Last.Equal(at(1, 0)) || l.Compressed || len(l.Gaps) != 0 {
		t.Fatalf("stored log %+v", l)
	}

	// x3 is rotated away before it is exported.
	log.add(at(1, 500), "x3")
	log.replace("")
	log.add(at(3, 0), "y1")
	res := logexport(t, "-n", ns, "-d", dir, "-p", "chatty")
	if res.code != 0 || !strings.Contains(res.stderr, "gap from 2024-01-01T10:00:01Z to 2024-01-01T10:00:04Z") {
		t.Fatalf("rotation: exit %d, stderr %q", res.code, res.stderr)
	}
	// The record is in DIR, not only in the run's own output.
	for _, f := range []string{filepath.Join(".logexport", "gaps", ns+".jsonl"), filepath.Join(".logexport", "journal.jsonl")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	code, st = status(t, dir)
	if code != 1 || len(st.Runs) != 2 || !strings.Contains(st.Problem, "found 1 gaps") {
		t.Fatalf("status after the gap: exit %d, problem %q, runs %+v", code, st.Problem, st.Runs)
	}
	gapRun := st.Runs[1].ID
	l = storedLog(t, st, ns, "chatty", "app")
	if len(l.Gaps) != 1 {
		t.Fatalf("gaps %+v", l.Gaps)
	}
	// To the end of the second of the first line after the rotation: a lost line logged before
	// it may carry a newer time in that second.
	if g := l.Gaps[0]; !g.From.Equal(at(1, 0)) || g.To == nil || !g.To.Equal(at(4, 0)) || g.Run != gapRun || !strings.Contains(g.Reason, "rotated") {
		t.Fatalf("gap %+v, want from %s to %s found by %s", g, at(1, 0), at(4, 0), gapRun)
	}
	if l.Lines != 3 || !l.First.Equal(at(0, 0)) || !l.Last.Equal(at(3, 0)) {
		t.Fatalf("stored log after the gap %+v", l)
	}

	// The table says the same, and exits 1 with the reason on stderr.
	res = logexport(t, "status", "-d", dir)
	if res.code != 1 || !strings.Contains(res.stderr, "found 1 gaps") {
		t.Fatalf("status table: exit %d, stderr %q", res.code, res.stderr)
	}
	for _, want := range []string{"NAMESPACE", "chatty", "2024-01-01T10:00:01Z", "2024-01-01T10:00:04Z", gapRun, "rotated"} {
		if !strings.Contains(res.stdout, want) {
			t.Fatalf("status table without %q:\n%s", want, res.stdout)
		}
	}

	// A clean run after it: exit 0 again, and the gap is still kept.
	log.add(at(4, 0), "y2")
	export(t, "-n", ns, "-d", dir, "-p", "chatty")
	code, st = status(t, dir)
	if code != 0 || st.Problem != "" || len(st.Runs) != 3 {
		t.Fatalf("status after a clean run: exit %d, problem %q, runs %d", code, st.Problem, len(st.Runs))
	}
	if l := storedLog(t, st, ns, "chatty", "app"); len(l.Gaps) != 1 || l.Gaps[0].Run != gapRun || l.Lines != 4 {
		t.Fatalf("after a clean run: %+v", l)
	}
}

// status reads a directory a follower holds (no lock, nothing written), and shows the follower's
// run as unfinished until it ends; a failed run makes it exit 1.
func TestStatusWhileFollowing(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "a1")
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: log}}})
	f := startWatchedFollow(t, "-n", ns, "-d", dir, "-o", "json")
	file := filepath.Join(dir, ns, "web", "app.log")
	deadline := time.Now().Add(30 * time.Second)
	for readFileQuiet(file) != lines("a1") {
		if time.Now().After(deadline) {
			t.Fatalf("the follower stored nothing:\n%s", f.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, st := status(t, dir)
	if code != 0 || len(st.Runs) != 1 || st.Runs[0].State != store.RunUnfinished || st.Runs[0].Mode != "follow" {
		t.Fatalf("status while following: exit %d, %+v", code, st.Runs)
	}
	if l := storedLog(t, st, ns, "web", "app"); l.Lines != 1 {
		t.Fatalf("stored log while following: %+v", l)
	}
	if code, _ := f.stopWithSummary(); code != 0 {
		t.Fatalf("follower exit %d", code)
	}
	before := dirSnapshot(t, dir)
	code, st = status(t, dir)
	if after := dirSnapshot(t, dir); after != before {
		t.Fatalf("status changed the directory:\n%s\nwas\n%s", after, before)
	}
	if code != 0 || st.Runs[0].State != store.RunEnded || st.Runs[0].Totals == nil || st.Runs[0].Totals.Lines != 1 {
		t.Fatalf("status after following: exit %d, %+v", code, st.Runs)
	}

	// A run that fails (the log file was cut shorter than its checkpoint, and is refused) is the
	// last run.
	if err := os.WriteFile(file, []byte("a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := logexport(t, "-n", ns, "-d", dir); res.code != 1 {
		t.Fatalf("run on a changed file: exit %d", res.code)
	}
	code, st = status(t, dir)
	if code != 1 || !strings.Contains(st.Problem, "failed") || *st.Runs[len(st.Runs)-1].ExitCode != 1 {
		t.Fatalf("status after a failed run: exit %d, problem %q", code, st.Problem)
	}
}

func readFileQuiet(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// dirSnapshot lists every file of dir with its mode, size and modification time.
func dirSnapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s %d %s\n", p, fi.Mode(), fi.Size(), fi.ModTime())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
