package store

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var rt0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// storeLog commits lines to a container's log with its last line at last.
func storeLog(t *testing.T, d *Dir, ns, pod, c string, last time.Time, lines ...string) {
	t.Helper()
	l := mustOpenLog(t, d, ns, pod, c)
	defer l.Close()
	cp := Checkpoint{Instance: "i-" + pod, PodUID: "uid-" + pod, Last: last, Begin: last}
	if old := l.Checkpoint(); old != nil {
		cp.Lines, cp.Begin = old.Lines, old.Begin
	}
	for _, s := range lines {
		writeLine(t, l, s)
		cp.Lines++
	}
	if err := l.Commit(cp); err != nil {
		t.Fatal(err)
	}
}

func gunzip(t *testing.T, file string) (string, archiveMeta) {
	t.Helper()
	f, err := os.Open(file)
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
	var m archiveMeta
	if err := json.Unmarshal([]byte(zr.Comment), &m); err != nil {
		t.Fatalf("gzip comment %q: %v", zr.Comment, err)
	}
	return string(b), m
}

func names(t *testing.T, dir string) []string {
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

func maintain(t *testing.T, d *Dir, ns string, present []string, r Retention) *Maintained {
	t.Helper()
	m, err := d.Maintain(ns, func(p string) bool { return slices.Contains(present, p) }, r)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A pod that is gone is marked, its log compressed at once and removed with its checkpoint and
// gaps once it has been gone, and its last line is older, for the retention; a pod that is there
// is never touched, whatever its age.
func TestMaintainCompressesAndRemoves(t *testing.T) {
	for _, tt := range []struct {
		name string
		// last is the old pod's last line, relative to when it is first found gone.
		last     time.Duration
		compress bool
		// at are the times of the runs after the first, relative to it, and removed whether the
		// old pod's log is gone after each.
		at      []time.Duration
		removed []bool
	}{
		{name: "gone and old", last: -time.Hour, compress: true, at: []time.Duration{time.Hour, 2 * time.Hour}, removed: []bool{false, true}},
		{name: "uncompressed", last: -time.Hour, at: []time.Duration{2 * time.Hour}, removed: []bool{true}},
		{name: "last line newer than the gone mark", last: time.Hour, compress: true, at: []time.Duration{2 * time.Hour, 3 * time.Hour}, removed: []bool{false, true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			defer d.Close()
			storeLog(t, d, "ns", "old", "app", rt0.Add(tt.last), "a", "b")
			storeLog(t, d, "ns", "live", "app", rt0.Add(-48*time.Hour), "c")
			if err := d.RecordGaps("ns", "old", "app", []Gap{{Reason: "rotated", Found: rt0}}); err != nil {
				t.Fatal(err)
			}
			r := Retention{Now: rt0, Retain: 2 * time.Hour, Compress: tt.compress}
			m := maintain(t, d, "ns", []string{"live"}, r)
			if !slices.Equal(m.Gone, []string{"ns/old/app"}) || len(m.Removed) > 0 {
				t.Fatalf("first run: %+v", m)
			}
			oldDir := filepath.Join(dir, "ns", "old")
			if tt.compress {
				if got := names(t, oldDir); !slices.Equal(got, []string{"app.1.log.gz"}) {
					t.Fatalf("after compression the pod's directory holds %v", got)
				}
				text, meta := gunzip(t, filepath.Join(oldDir, "app.1.log.gz"))
				if text != "a\nb\n" || meta.Lines != 2 || meta.Pod != "old" || !meta.Gone.Equal(rt0) {
					t.Fatalf("archive holds %q, %+v", text, meta)
				}
				l := findLog(t, inspectOK(t, dir), "ns", "old", "app")
				if !l.Compressed || l.File != filepath.Join(oldDir, "app.1.log.gz") || l.Lines != 2 {
					t.Fatalf("status shows %+v", l)
				}
			}
			for i, at := range tt.at {
				r.Now = rt0.Add(at)
				m := maintain(t, d, "ns", []string{"live"}, r)
				gone := !fileExists(filepath.Join(oldDir, "app.log")) && !fileExists(filepath.Join(oldDir, "app.1.log.gz"))
				if gone != tt.removed[i] || slices.Equal(m.Removed, []string{"ns/old/app"}) != tt.removed[i] {
					t.Fatalf("run at %s: removed %v (%+v), want %v", at, gone, m, tt.removed[i])
				}
				if !tt.removed[i] {
					continue
				}
				if cp := cpOf(t, d, "ns", "old", "app"); cp != nil {
					t.Fatalf("checkpoint kept: %+v", cp)
				}
				if fileExists(oldDir) {
					t.Fatalf("%s kept, with %v", oldDir, names(t, oldDir))
				}
				inv := inspectOK(t, dir)
				if len(inv.Logs) != 1 || inv.Logs[0].Pod != "live" || len(inv.Warnings) > 0 {
					t.Fatalf("status after removal: %+v", inv)
				}
			}
			if b, err := os.ReadFile(filepath.Join(dir, "ns", "live", "app.log")); err != nil || string(b) != "c\n" {
				t.Fatalf("the live pod's log: %q, %v", b, err)
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// A pod back under the name of one whose log is stored compressed starts a file of its own
// beside the archive; gone again, its log gets the next number. A pod back before the
// compression finished (a crash after the number was saved) goes on with the log.
func TestArchivedPodComesBack(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	defer d.Close()
	storeLog(t, d, "ns", "p", "app", rt0, "first pod")
	maintain(t, d, "ns", nil, Retention{Now: rt0, Compress: true})
	storeLog(t, d, "ns", "p", "app", rt0.Add(time.Hour), "second pod")
	if cp := cpOf(t, d, "ns", "p", "app"); cp.Archive != 0 || !cp.Gone.IsZero() || cp.Lines != 1 {
		t.Fatalf("the second pod's checkpoint: %+v", cp)
	}
	pd := filepath.Join(dir, "ns", "p")
	if b, _ := os.ReadFile(filepath.Join(pd, "app.log")); string(b) != "second pod\n" {
		t.Fatalf("app.log: %q", b)
	}
	m := maintain(t, d, "ns", nil, Retention{Now: rt0.Add(2 * time.Hour), Compress: true})
	if !slices.Equal(m.Compressed, []string{"ns/p/app"}) {
		t.Fatalf("%+v", m)
	}
	if got := names(t, pd); !slices.Equal(got, []string{"app.1.log.gz", "app.2.log.gz"}) {
		t.Fatalf("the pod's directory holds %v", got)
	}
	for n, want := range map[string]string{"app.1.log.gz": "first pod\n", "app.2.log.gz": "second pod\n"} {
		if text, _ := gunzip(t, filepath.Join(pd, n)); text != want {
			t.Fatalf("%s holds %q", n, text)
		}
	}
	// status lists both archives, the earlier pod's first.
	var files []string
	for _, l := range inspectOK(t, dir).Logs {
		if l.Pod == "p" {
			if !l.Compressed || l.Lines != 1 {
				t.Fatalf("status row %+v", l)
			}
			files = append(files, filepath.Base(l.File))
		}
	}
	if !slices.Equal(files, []string{"app.1.log.gz", "app.2.log.gz"}) {
		t.Fatalf("status lists %v", files)
	}

	// The number saved, the archive never written: the pod back goes on with its log.
	storeLog(t, d, "ns", "q", "app", rt0, "one")
	cp := *cpOf(t, d, "ns", "q", "app")
	cp.Gone, cp.Archive = rt0, 1
	cps, _ := d.checkpoints("ns")
	if err := cps.put(map[containerKey]Checkpoint{{"q", "app"}: cp}); err != nil {
		t.Fatal(err)
	}
	storeLog(t, d, "ns", "q", "app", rt0.Add(time.Hour), "two")
	if b, _ := os.ReadFile(filepath.Join(dir, "ns", "q", "app.log")); string(b) != "one\ntwo\n" {
		t.Fatalf("q's log: %q", b)
	}
	if cp := cpOf(t, d, "ns", "q", "app"); cp.Archive != 0 || !cp.Gone.IsZero() {
		t.Fatalf("q's checkpoint kept the marks: %+v", cp)
	}
}

// A pod that is there again loses its gone mark, and a directory's namespaces are those with
// checkpoints or gaps.
func TestMaintainBackAndNamespaces(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	defer d.Close()
	storeLog(t, d, "a", "p", "app", rt0, "x")
	if err := d.RecordGaps("b", "q", "app", []Gap{{Reason: "lost", Found: rt0}}); err != nil {
		t.Fatal(err)
	}
	if ns, err := d.Namespaces(); err != nil || !slices.Equal(ns, []string{"a", "b"}) {
		t.Fatalf("namespaces %v, %v", ns, err)
	}
	maintain(t, d, "a", nil, Retention{Now: rt0, Retain: time.Hour})
	if m := maintain(t, d, "a", []string{"p"}, Retention{Now: rt0.Add(2 * time.Hour), Retain: time.Hour}); !slices.Equal(m.Back, []string{"a/p/app"}) || len(m.Removed) > 0 {
		t.Fatalf("%+v", m)
	}
	if cp := cpOf(t, d, "a", "p", "app"); !cp.Gone.IsZero() {
		t.Fatalf("gone mark kept: %+v", cp)
	}
	// Gaps of a container without a log go with the retention of the time they were found (by
	// the clock when they were recorded).
	found := time.Now()
	if m := maintain(t, d, "b", nil, Retention{Now: found.Add(-time.Minute), Retain: time.Hour}); len(m.Removed) > 0 {
		t.Fatalf("%+v", m)
	}
	if m := maintain(t, d, "b", nil, Retention{Now: found.Add(2 * time.Hour), Retain: time.Hour}); !slices.Equal(m.Removed, []string{"b/q/app"}) {
		t.Fatalf("%+v", m)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".logexport", "gaps", "b.jsonl")); err == nil && bytes.Contains(b, []byte(`"q"`)) {
		t.Fatalf("gaps kept: %s", b)
	}
}

func cpOf(t *testing.T, d *Dir, ns, pod, c string) *Checkpoint {
	t.Helper()
	cp, err := d.Checkpoint(ns, pod, c)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}
