package store

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// A directory held open from an earlier log is not used once its path names another one: a
// namespace moved aside during a run is made again, and its logs exported again from the start.
func TestHeldDirectoryReplaced(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	defer d.Close()
	l := mustOpenLog(t, d, "ns", "p", "c")
	if _, err := l.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
	if err := l.Commit(Checkpoint{Instance: "i"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "ns"), filepath.Join(dir, "ns-old")); err != nil {
		t.Fatal(err)
	}
	l = mustOpenLog(t, d, "ns", "p", "c")
	if !l.Reset {
		t.Errorf("the log moved aside was not noticed (Reset false)")
	}
	if _, err := l.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
	if err := l.Commit(Checkpoint{Instance: "i"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"ns/p/c.log": "two\n", "ns-old/p/c.log": "one\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p))); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", p, b, err, want)
		}
	}
}

// A round of commits is synced with one syncfs only when everything it syncs is on the
// directory's file system: a pod directory that is a mount point is synced on its own.
func TestSyncFSOnlyOnOneFileSystem(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no syncfs")
	}
	dir := t.TempDir()
	rec, err := NewRecorder(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The pod directory "mnt" pretends to be another file system.
	elsewhere := func(o *options) {
		o.dev = func(fi fs.FileInfo) (uint64, bool) {
			dev, ok := devOf(fi)
			if fi.Name() == "mnt" {
				dev++
			}
			return dev, ok
		}
	}
	d, err := Open(dir, false, SyncFSMin(1), elsewhere, rec.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, tt := range []struct {
		pod    string
		syncfs bool
	}{{"p", true}, {"mnt", false}} {
		before := rec.SyncFSOps()
		l := mustOpenLog(t, d, "ns", tt.pod, "c")
		if _, err := l.Write([]byte("one\n")); err != nil {
			t.Fatal(err)
		}
		l.EndLine()
		if err := l.Commit(Checkpoint{Instance: "i"}); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := rec.SyncFSOps() > before; got != tt.syncfs {
			t.Errorf("pod %s: synced with syncfs %v, want %v\n%s", tt.pod, got, tt.syncfs, rec.Trace())
		}
	}
}
