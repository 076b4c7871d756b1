package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenLocksAndKeepsMode(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, true); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	d.Close()
	if _, err := Open(dir, false); err == nil || !strings.Contains(err.Error(), "created with --timestamps") {
		t.Fatalf("Open in the other mode: %v", err)
	}
	d, err = Open(dir, true)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	d.Close()
}

func TestLogPathRefusesUnsafeNames(t *testing.T) {
	for _, n := range []string{"", ".", "..", "../x", "a/b", ".hidden", "a\x00b"} {
		if _, err := LogPath("ns", n, "c"); err == nil {
			t.Errorf("LogPath accepted pod name %q", n)
		}
	}
	if p, err := LogPath("ns", "redis-0.x", "c"); err != nil || p != "ns/redis-0.x/c.log" {
		t.Fatalf("LogPath = %q, %v", p, err)
	}
}

// Bytes written after the last commit (by a run that was killed) are cut off when the log is
// opened again; a file shorter than its checkpoint, or without one, is refused.
func TestOpenLogRecovery(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l, err := d.OpenLog("ns", "p", "c")
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if _, err := l.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("one\n")
	l.EndLine()
	write("half")
	if err := l.Commit(Checkpoint{Instance: "i", Since: time.Unix(1, 0), Skip: 1}); err != nil {
		t.Fatal(err)
	}
	write("two\n")
	l.EndLine()
	if err := l.flush(); err != nil { // as if killed after a write but before the commit
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ns", "p", "c.log")
	if b, _ := os.ReadFile(file); string(b) != "one\ntwo\n" {
		t.Fatalf("before reopen: %q", b)
	}
	l2, err := d.OpenLog("ns", "p", "c")
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if b, _ := os.ReadFile(file); string(b) != "one\n" {
		t.Fatalf("after reopen: %q, want the committed line only", b)
	}
	if cp := l2.Checkpoint(); cp == nil || cp.Instance != "i" || cp.Size != 4 || cp.Skip != 1 {
		t.Fatalf("checkpoint %+v", cp)
	}

	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.OpenLog("ns", "p", "c"); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("shorter file: %v", err)
	}
	other := filepath.Join(dir, "ns", "q", "c.log")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("foreign\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.OpenLog("ns", "q", "c"); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("file without checkpoint: %v", err)
	}
}

// A symlink planted in the directory cannot redirect a write outside it.
func TestNoEscapeThroughSymlink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	d, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.Symlink(outside, filepath.Join(dir, "ns")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.OpenLog("ns", "p", "c"); err == nil {
		t.Fatal("OpenLog followed a symlink out of the directory")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("something was written outside: %v", entries)
	}
}
