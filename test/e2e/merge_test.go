package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// Identical lines in the same second (even the same nanosecond) are all kept, once each, across
// incremental runs that resume inside that second.
func TestRepeatedLinesIncremental(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "same", "same", "same", "other").add(at(1, 5), "same", "same")
	cs := []container{{name: "app", log: log}}
	createPod(t, ns, pod{name: "redis-0", containers: cs})
	file := filepath.Join(dir, ns, "redis-0", "app.log")

	s := export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "redis-0", "app"); c.Lines != 6 || c.Status != "ok" {
		t.Fatalf("first run: %+v", c)
	}
	want := lines("same", "same", "same", "other", "same", "same")
	assertFile(t, file, want)

	// New lines in the very second (and nanosecond) the last run ended in, then later ones.
	log.add(at(1, 5), "same", "same").add(at(1, 7), "same").add(at(2, 0), "new")
	s = export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "redis-0", "app"); c.Lines != 4 {
		t.Fatalf("second run added %d lines, want 4", c.Lines)
	}
	want += lines("same", "same", "same", "new")
	assertFile(t, file, want)

	s = export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "redis-0", "app"); c.Lines != 0 || c.Status != "up to date" {
		t.Fatalf("third run: %+v", c)
	}
	assertFile(t, file, want)
}

// --timestamps keeps the served timestamp; a directory keeps the mode it was created with.
func TestTimestampsMode(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "a").raw("2024-01-01T11:00:01+01:00 stderr F b\n")
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: log}}})
	export(t, "-n", ns, "-d", dir, "--timestamps")
	file := filepath.Join(dir, ns, "web", "app.log")
	want := "2024-01-01T10:00:00.000000000Z a\n2024-01-01T11:00:01.000000000+01:00 b\n"
	assertFile(t, file, want)
	log.add(at(2, 0), "c")
	export(t, "-n", ns, "-d", dir, "--timestamps")
	want += "2024-01-01T10:00:02.000000000Z c\n"
	assertFile(t, file, want)

	res := logexport(t, "-n", ns, "-d", dir)
	if res.code != 1 || !strings.Contains(res.stderr, "with --timestamps") {
		t.Fatalf("a run without --timestamps on a --timestamps directory: exit %d, %q", res.code, res.stderr)
	}
	assertFile(t, file, want)
}

// A restart between runs: the previous instance's unexported tail comes before the new
// instance's lines. Two restarts between runs lose the middle instance's tail: reported as a gap.
func TestRestarts(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	l1 := newLog(t).add(at(0, 0), "a1", "a2")
	cs := []container{{name: "app", log: l1}}
	createPod(t, ns, pod{name: "worker", containers: cs})
	file := filepath.Join(dir, ns, "worker", "app.log")
	export(t, "-n", ns, "-d", dir)

	l1.add(at(0, 0), "a3").add(at(1, 0), "a4")
	l2 := newLog(t).add(at(5, 0), "b1", "b2")
	cs = restart(t, ns, "worker", cs, "app", l2)
	s := export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "worker", "app"); c.Lines != 4 || len(c.Gaps) != 0 {
		t.Fatalf("after one restart: %+v", c)
	}
	want := lines("a1", "a2", "a3", "a4", "b1", "b2")
	assertFile(t, file, want)

	// b3 is logged by instance 2 after the export; then it restarts twice.
	l2.add(at(6, 0), "b3")
	l3 := newLog(t).add(at(10, 0), "c1")
	cs = restart(t, ns, "worker", cs, "app", l3)
	l4 := newLog(t).add(at(20, 0), "d1")
	restart(t, ns, "worker", cs, "app", l4)
	s = export(t, "-n", ns, "-d", dir)
	c := find(t, s, ns, "worker", "app")
	if c.Lines != 2 || len(c.Gaps) != 1 || c.Status != "gap" {
		t.Fatalf("after two restarts: %+v", c)
	}
	if g := c.Gaps[0]; !g.From.Equal(at(5, 0)) || g.To == nil || !g.To.Equal(at(10, 0)) {
		t.Fatalf("gap %+v, want from %s to %s", g, at(5, 0), at(10, 0))
	}
	want += lines("c1", "d1")
	assertFile(t, file, want)
}

// A log rotated away between runs: what it held after the checkpoint is gone, the gap is reported
// with its time range, and the rotated file's lines are appended once.
func TestRotationGap(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "x1").add(at(1, 0), "x2")
	createPod(t, ns, pod{name: "chatty", containers: []container{{name: "app", log: log}}})
	file := filepath.Join(dir, ns, "chatty", "app.log")
	export(t, "-n", ns, "-d", dir)

	// x3 is rotated away before it is exported.
	log.add(at(1, 500), "x3")
	log.replace("")
	log.add(at(3, 0), "y1").add(at(4, 0), "y2")
	res := logexport(t, "-n", ns, "-d", dir)
	if res.code != 0 || !strings.Contains(res.stderr, "gap from 2024-01-01T10:00:01Z to 2024-01-01T10:00:04Z") {
		t.Fatalf("rotation: exit %d, stderr %q", res.code, res.stderr)
	}
	want := lines("x1", "x2", "y1", "y2")
	assertFile(t, file, want)

	// The run after the rotation resumes exactly, also inside the rotated file's last second.
	log.add(at(4, 0), "y3")
	s := export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "chatty", "app"); c.Lines != 1 || len(c.Gaps) != 0 {
		t.Fatalf("after rotation: %+v", c)
	}
	assertFile(t, file, want+lines("y3"))
}
