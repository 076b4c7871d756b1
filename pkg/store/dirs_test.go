package store

import (
	"os"
	"path/filepath"
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
