package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeLine(t *testing.T, l *Log, s string) {
	t.Helper()
	if _, err := l.Write([]byte(s + "\n")); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
}

func inspectOK(t *testing.T, dir string) *Inventory {
	t.Helper()
	inv, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func findLog(t *testing.T, inv *Inventory, ns, pod, c string) StoredLog {
	t.Helper()
	for _, l := range inv.Logs {
		if l.Namespace == ns && l.Pod == pod && l.Container == c {
			return l
		}
	}
	t.Fatalf("%s/%s/%s not in %+v", ns, pod, c, inv.Logs)
	return StoredLog{}
}

// Gaps go to the store with the commit of their log (a gap recorded while open is recorded again
// once closed, and read back once), or on their own; the run that found them is named.
func TestGapsKeptWithTheirLog(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	if err := d.StartRun(Run{ID: "run-1", Start: time.Unix(100, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	l := mustOpenLog(t, d, "ns", "p", "c")
	t1, t2 := time.Unix(200, 0).UTC(), time.Unix(300, 0).UTC()
	writeLine(t, l, "one")
	open := Gap{From: t1, Reason: "rotated"}
	l.AddGaps(open)
	if err := l.Commit(Checkpoint{Instance: "i", Lines: 1, Begin: t1, Last: t1}); err != nil {
		t.Fatal(err)
	}
	writeLine(t, l, "two")
	closed := open
	closed.To = &t2
	l.AddGaps(closed)
	if err := l.Commit(Checkpoint{Instance: "i", Lines: 2, Begin: t1, Last: t2}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.RecordGaps("ns", "gone", "c", []Gap{{Reason: "its log is lost"}}); err != nil {
		t.Fatal(err)
	}
	// Read while the directory is still held, as status reads it while a follower runs.
	inv := inspectOK(t, dir)
	c := findLog(t, inv, "ns", "p", "c")
	if len(c.Gaps) != 1 || c.Gaps[0].To == nil || !c.Gaps[0].To.Equal(t2) || c.Gaps[0].Run != "run-1" || c.Gaps[0].Found.IsZero() {
		t.Fatalf("gaps of ns/p/c: %+v", c.Gaps)
	}
	if c.Lines != 2 || c.Bytes != 8 || c.First == nil || !c.First.Equal(t1) || c.Last == nil || !c.Last.Equal(t2) || c.File != filepath.Join(dir, "ns", "p", "c.log") || c.Compressed {
		t.Fatalf("ns/p/c: %+v", c)
	}
	if g := findLog(t, inv, "ns", "gone", "c"); len(g.Gaps) != 1 || g.File != "" || g.Gaps[0].Run != "run-1" {
		t.Fatalf("ns/gone/c: %+v", g)
	}
	if len(inv.Runs) != 1 || inv.Runs[0].State != RunUnfinished || inv.Runs[0].GapsRecorded != 2 {
		t.Fatalf("runs: %+v", inv.Runs)
	}

	// Removing a container's gaps leaves the others'; the last one's removes the file.
	if err := d.RemoveGaps("ns", "p", "c"); err != nil {
		t.Fatal(err)
	}
	inv = inspectOK(t, dir)
	if c := findLog(t, inv, "ns", "p", "c"); len(c.Gaps) != 0 {
		t.Fatalf("gaps after RemoveGaps: %+v", c.Gaps)
	}
	if g := findLog(t, inv, "ns", "gone", "c"); len(g.Gaps) != 1 {
		t.Fatalf("another container's gaps removed: %+v", g)
	}
	if err := d.RemoveGaps("ns", "gone", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".logexport", "gaps", "ns.jsonl")); !os.IsNotExist(err) {
		t.Fatalf("gap file without gaps: %v", err)
	}
	// and the file is made again for the next gap
	if err := d.RecordGaps("ns", "gone", "c", []Gap{{Reason: "again"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if g := findLog(t, inspectOK(t, dir), "ns", "gone", "c"); len(g.Gaps) != 1 || g.Gaps[0].Reason != "again" {
		t.Fatalf("after the file was removed: %+v", g)
	}
}

// A commit whose gaps cannot be written saves no checkpoint: a checkpoint past a gap that is not
// kept would lose it for good, since the next run does not find it again.
func TestGapWriteFailureFailsCommit(t *testing.T) {
	for _, op := range []string{"write", "sync"} {
		t.Run(op, func(t *testing.T) {
			dir := t.TempDir()
			f := &faultFS{}
			d, err := Open(dir, false, f.option())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			l := mustOpenLog(t, d, "ns", "p", "c")
			writeLine(t, l, "one")
			if err := l.Commit(Checkpoint{Instance: "i", Lines: 1}); err != nil {
				t.Fatal(err)
			}
			writeLine(t, l, "two")
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			f.set(op+" .logexport/gaps/ns.jsonl", errors.New(op+" failed"))
			l.AddGaps(Gap{Reason: "lost"})
			if err := l.Commit(Checkpoint{Instance: "i", Lines: 2}); err == nil {
				t.Fatal("commit saved although its gap could not be kept")
			}
			if cp := checkpointOf(t, d, "ns", "p", "c"); cp == nil || cp.Lines != 1 {
				t.Fatalf("checkpoint %+v, want the one before", cp)
			}
			l.Close()
		})
	}
}

// The journal has a start and an end line per run; a run without its end is unfinished while it
// is the newest, killed once another started; a torn last line is ignored by readers and cut off
// by the next append; TrimJournal drops the runs that ended before a time.
func TestJournal(t *testing.T) {
	dir := t.TempDir()
	at := func(s int) time.Time { return time.Unix(int64(s), 0).UTC() }
	code := func(c int) *int { return &c }
	run := func(id string, start, end int, exit int, gaps int) {
		t.Helper()
		d := mustOpen(t, dir)
		r := Run{ID: id, Mode: "once", Start: at(start), Who: Who{Context: "kind", Host: "h"}, Selected: []Selection{{Namespace: "ns"}}}
		if err := d.StartRun(r); err != nil {
			t.Fatal(err)
		}
		if end >= 0 {
			r.End, r.ExitCode, r.Totals = ptrTime(at(end)), code(exit), &Totals{Containers: 1, Gaps: gaps}
			if err := d.EndRun(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run("a", 10, 11, 0, 0)
	run("b", 20, -1, 0, 0) // killed
	run("c", 30, 31, 1, 0)
	run("d", 40, -1, 0, 0) // running, or killed: the newest
	journal := filepath.Join(dir, ".logexport", "journal.jsonl")
	f, err := os.OpenFile(journal, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"torn","event":"st`)
	f.Close()
	inv := inspectOK(t, dir)
	var states []string
	for _, r := range inv.Runs {
		states = append(states, r.ID+"="+r.State)
	}
	if got := strings.Join(states, " "); got != "a=ended b=killed c=ended d=unfinished" {
		t.Fatalf("runs %s", got)
	}
	if !inv.Runs[1].Failed() || !inv.Runs[2].Failed() || inv.Runs[0].Failed() || inv.Runs[3].Failed() {
		t.Fatalf("failed: %+v", inv.Runs)
	}
	if len(inv.Warnings) != 0 {
		t.Fatalf("a torn last line is no warning: %v", inv.Warnings)
	}
	run("e", 50, 51, 0, 2)
	b, _ := os.ReadFile(journal)
	if strings.Contains(string(b), "torn") {
		t.Fatalf("the torn line was not cut off:\n%s", b)
	}
	inv = inspectOK(t, dir)
	if last := inv.Runs[len(inv.Runs)-1]; last.ID != "e" || !last.FoundGaps() || inv.Runs[3].State != RunKilled {
		t.Fatalf("runs %+v", inv.Runs)
	}

	d := mustOpen(t, dir)
	if err := d.TrimJournal(at(30)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	states = nil
	for _, r := range inspectOK(t, dir).Runs {
		states = append(states, r.ID)
	}
	if got := strings.Join(states, " "); got != "c d e" {
		t.Fatalf("after trimming before 30: %s", got)
	}
}

// Inspect reads, never writes: a directory that is not an export directory is an error, and
// nothing is created.
func TestInspectNotADirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := Inspect(dir); err == nil || !strings.Contains(err.Error(), "not a kubectl logexport directory") {
		t.Fatalf("Inspect of an empty directory: %v", err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("Inspect wrote %v", es)
	}
	if _, err := Inspect(filepath.Join(dir, "none")); err == nil {
		t.Fatal("Inspect of a missing directory succeeded")
	}
}

// The first timestamp of a log whose checkpoint predates Begin is read from the file's first
// line when lines keep their timestamps; a compressed log shows as such.
func TestInspectFirstFromFile(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b"} {
		l := mustOpenLog(t, d, "ns", "p", c)
		writeLine(t, l, "2024-01-01T10:00:00.5Z first")
		writeLine(t, l, "2024-01-01T10:00:01Z second")
		if err := l.Commit(Checkpoint{Instance: "i", Lines: 2, Last: time.Date(2024, 1, 1, 10, 0, 1, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	d.Close()
	if err := os.Rename(filepath.Join(dir, "ns", "p", "b.log"), filepath.Join(dir, "ns", "p", "b.log.gz")); err != nil {
		t.Fatal(err)
	}
	inv := inspectOK(t, dir)
	a := findLog(t, inv, "ns", "p", "a")
	if a.First == nil || !a.First.Equal(time.Date(2024, 1, 1, 10, 0, 0, 5e8, time.UTC)) {
		t.Fatalf("first of a: %v", a.First)
	}
	if b := findLog(t, inv, "ns", "p", "b"); !b.Compressed || !strings.HasSuffix(b.File, "b.log.gz") {
		t.Fatalf("b: %+v", b)
	}
}
