package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func b60write(t *testing.T, l *Log, s string) {
	t.Helper()
	if _, err := l.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func b60file(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ns", "p", "c.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// CommitLines on a new log (its first commit: the temporary file takes its name) with the line's
// start in the file, more of it written, then Close without a commit: the file is cut to the
// checkpoint; reopened, the log goes on from there.
func TestBreak60CommitLinesNewLogThenClose(t *testing.T) {
	for _, flushed := range []bool{false, true} {
		t.Run(map[bool]string{false: "buffered", true: "flushed"}[flushed], func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			l := mustOpenLog(t, d, "ns", "p", "c")
			b60write(t, l, "one\n")
			l.EndLine()
			b60write(t, l, "half")
			if flushed {
				if err := l.flush(); err != nil {
					t.Fatal(err)
				}
			}
			cp := Checkpoint{Instance: "i", Since: time.Unix(1, 0), Skip: 1, Lines: 1}
			if err := l.CommitLines(cp); err != nil {
				t.Fatal(err)
			}
			b60write(t, l, strings.Repeat("m", 10000))
			if err := l.CommitLines(cp); err != nil { // nothing new whole: same checkpoint
				t.Fatal(err)
			}
			if l.Committed() != 4 {
				t.Fatalf("committed %d, want 4", l.Committed())
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if got := b60file(t, dir); got != "one\n" {
				t.Fatalf("file after Close without a commit: %q, want %q (the checkpoint's bytes)", got[:min(len(got), 40)], "one\n")
			}
			l2 := mustOpenLog(t, d, "ns", "p", "c")
			if c := l2.Checkpoint(); c == nil || c.Size != 4 {
				t.Fatalf("checkpoint after reopening: %+v, want size 4", c)
			}
			b60write(t, l2, "two\n")
			l2.EndLine()
			if err := l2.Commit(cp); err != nil {
				t.Fatal(err)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if got := b60file(t, dir); got != "one\ntwo\n" {
				t.Fatalf("file %q, want %q", got, "one\ntwo\n")
			}
		})
	}
}

// CommitLines, then the stream breaks inside the line (DropPartial, as the next stream starts),
// and the line is served again whole: the file holds it once.
func TestBreak60CommitLinesThenDropPartial(t *testing.T) {
	for _, small := range []bool{false, true} {
		for _, flushed := range []bool{false, true} {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			l := mustOpenLog(t, d, "ns", "p", "c")
			if small {
				l.KeepBufferSmall()
			}
			b60write(t, l, "one\n")
			l.EndLine()
			long := strings.Repeat("L", 9000)
			b60write(t, l, long[:5000])
			if flushed {
				if err := l.flush(); err != nil {
					t.Fatal(err)
				}
			}
			cp := Checkpoint{Instance: "i", Since: time.Unix(1, 0), Skip: 1, Lines: 1}
			if err := l.CommitLines(cp); err != nil {
				t.Fatal(err)
			}
			b60write(t, l, long[5000:7000])
			if err := l.DropPartial(); err != nil {
				t.Fatal(err)
			}
			b60write(t, l, long+"\n")
			l.EndLine()
			b60write(t, l, "two\n")
			l.EndLine()
			b60write(t, l, "par")
			if err := l.CommitLines(cp); err != nil {
				t.Fatal(err)
			}
			b60write(t, l, "tial\n")
			l.EndLine()
			if err := l.Commit(cp); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			want := "one\n" + long + "\ntwo\npartial\n"
			if got := b60file(t, dir); got != want {
				t.Fatalf("small=%v flushed=%v: file %d bytes, want %d", small, flushed, len(got), len(want))
			}
		}
	}
}
