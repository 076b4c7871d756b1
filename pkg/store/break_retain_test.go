package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Attack: a crash after an archive's rename is synced but before the log's removal reaches the
// disk (the removal is synced only with the directory's next sync) leaves CONTAINER.log beside
// CONTAINER.1.log.gz, the checkpoint naming archive 1. Until the next run removes the log, status
// lists the same lines twice: the container's row as the plain log, and a second row for the
// archive as if it were an earlier pod's (inspectArchives only skips archives a row shows).
func TestBreakRetainStatusCountsLeftoverLogTwice(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	storeLog(t, d, "ns", "p", "app", rt0, "one", "two")
	logPath := filepath.Join(dir, "ns", "p", "app.log")
	saved, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	maintain(t, d, "ns", nil, Retention{Now: rt0, Compress: true})
	_ = d.Close()
	// The crash state: the unsynced removal of app.log did not reach the disk.
	if err := os.WriteFile(logPath, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	var rows []StoredLog
	var lines int64
	for _, l := range inspectOK(t, dir).Logs {
		if l.Pod == "p" && l.Container == "app" {
			rows = append(rows, l)
			lines += l.Lines
		}
	}
	t.Logf("rows: %+v", rows)
	if len(rows) != 1 || lines != 2 {
		t.Fatalf("status lists %d rows with %d lines for one log of 2 lines", len(rows), lines)
	}
}

// Attack: the same crash state, then a run in which the pod's name is there again but the pod is
// not exported (a selector leaves it out): Maintain clears the gone mark and keeps archive 1; the
// log left beside the archive stays. A later run that finds the name gone again must end with
// each line once: in archive 1, and no second copy anywhere.
func TestBreakRetainLeftoverLogBackThenGone(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	storeLog(t, d, "ns", "p", "app", rt0, "one", "two")
	logPath := filepath.Join(dir, "ns", "p", "app.log")
	saved, _ := os.ReadFile(logPath)
	maintain(t, d, "ns", nil, Retention{Now: rt0, Compress: true})
	_ = d.Close()
	if err := os.WriteFile(logPath, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir)
	m := maintain(t, d, "ns", []string{"p"}, Retention{Now: rt0.Add(time.Hour), Compress: true})
	t.Logf("back: %+v", m)
	m = maintain(t, d, "ns", nil, Retention{Now: rt0.Add(2 * time.Hour), Compress: true})
	t.Logf("gone again: %+v", m)
	_ = d.Close()
	pd := filepath.Join(dir, "ns", "p")
	got := names(t, pd)
	t.Logf("files: %v", got)
	if len(got) != 1 || got[0] != "app.1.log.gz" {
		t.Fatalf("the pod's directory holds %v, want only app.1.log.gz", got)
	}
	if text, _ := gunzip(t, filepath.Join(pd, "app.1.log.gz")); text != "one\ntwo\n" {
		t.Fatalf("archive holds %q", text)
	}
}

// A log with a gap is removed by --retain, and the run crashes after the gaps went and before
// the checkpoint did (the order the removal keeps: files, gaps, checkpoint). The pod comes back
// under the name: its new log must not inherit the removed log's gaps. (The removal once took the
// checkpoint first: a crash then left the gaps, which the new pod's row listed.)
func TestBreakRetainRemovedLogsGapsOnNewPod(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	l := mustOpenLog(t, d, "ns", "p", "app")
	writeLine(t, l, "one")
	to := rt0
	l.AddGaps(Gap{From: rt0.Add(-time.Minute), To: &to, Reason: "old pod's gap", Run: "r1", Found: rt0})
	if err := l.Commit(Checkpoint{Instance: "i", PodUID: "u1", Lines: 1, Last: rt0, Begin: rt0}); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	maintain(t, d, "ns", nil, Retention{Now: rt0, Retain: time.Hour})
	cpsBefore, err := os.ReadFile(filepath.Join(dir, ".logexport", "checkpoints", "ns.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	m := maintain(t, d, "ns", nil, Retention{Now: rt0.Add(2 * time.Hour), Retain: time.Hour})
	t.Logf("removed: %+v", m)
	_ = d.Close()
	// The crash state: the gaps went, the checkpoint did not.
	if err := os.WriteFile(filepath.Join(dir, ".logexport", "checkpoints", "ns.jsonl"), cpsBefore, 0o600); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir)
	defer d.Close()
	storeLog(t, d, "ns", "p", "app", rt0.Add(3*time.Hour), "new pod")
	for _, row := range inspectOK(t, dir).Logs {
		if row.Pod == "p" && len(row.Gaps) > 0 {
			t.Fatalf("the new pod's row lists the removed log's gaps: %+v", row.Gaps)
		}
	}
}
