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
	if os.Getenv("BREAK_RETAIN") == "" {
		t.Skip("fails: a log left beside its archive by a crash (its removal not synced) is listed twice by status, as the log and as an earlier pod's archive; run with BREAK_RETAIN=1")
	}
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

// Attack: retention removes the files, then the checkpoint, then the gaps. A crash after the
// checkpoint file's rewrite but before the gaps go, then the pod's name back: the new pod's log
// starts from nothing, and must not inherit the gaps of the removed log (status would list the
// removed pod's gaps on the new pod's row, and they are never removed while the name is used).
func TestBreakRetainRemovedLogsGapsOnNewPod(t *testing.T) {
	if os.Getenv("BREAK_RETAIN") == "" {
		t.Skip("fails: a crash between the checkpoint's removal and the gaps' leaves the removed log's gaps, which the pod back under the name inherits; run with BREAK_RETAIN=1")
	}
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
	gapsBefore, _ := os.ReadFile(filepath.Join(dir, ".logexport", "gaps", "ns.jsonl"))
	maintain(t, d, "ns", nil, Retention{Now: rt0, Retain: time.Hour})
	m := maintain(t, d, "ns", nil, Retention{Now: rt0.Add(2 * time.Hour), Retain: time.Hour})
	t.Logf("removed: %+v", m)
	_ = d.Close()
	// The crash state: the checkpoint went, the gaps did not.
	if err := os.WriteFile(filepath.Join(dir, ".logexport", "gaps", "ns.jsonl"), gapsBefore, 0o600); err != nil {
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
