package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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
	d := mustOpen(t, dir)
	defer d.Close()
	l := mustOpenLog(t, d, "ns", "p", "c")
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
	l2 := mustOpenLog(t, d, "ns", "p", "c")
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
	d := mustOpen(t, dir)
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

func commit(t *testing.T, d *Dir, ns, pod, container string, cp Checkpoint) {
	t.Helper()
	l := mustOpenLog(t, d, ns, pod, container)
	if err := l.Commit(cp); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func checkpointOf(t *testing.T, d *Dir, ns, pod, container string) *Checkpoint {
	t.Helper()
	l := mustOpenLog(t, d, ns, pod, container)
	defer l.Close()
	return l.Checkpoint()
}

// A line torn by a run killed in the middle of a save is dropped, and the next save overwrites it;
// a complete line that does not parse refuses the namespace, and only that one.
func TestCheckpointFileDamage(t *testing.T) {
	tests := []struct {
		name    string
		damage  string // appended to ns's checkpoint file, after its one line
		wantErr string
	}{
		{name: "torn line", damage: `{"pod":"p","container":"c","instance":"torn"`},
		{name: "corrupt line", damage: "{\n", wantErr: "is corrupt at line 2"},
		{name: "unsafe name", damage: `{"pod":"..","container":"c"}` + "\n", wantErr: "is corrupt at line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			commit(t, d, "ns", "p", "c", Checkpoint{Instance: "i1"})
			commit(t, d, "other", "p", "c", Checkpoint{Instance: "o1"})
			d.Close()
			file := appendCheckpointFile(t, dir, "ns", tt.damage)

			d = mustOpen(t, dir)
			defer d.Close()
			if cp := checkpointOf(t, d, "other", "p", "c"); cp == nil || cp.Instance != "o1" {
				t.Fatalf("other namespace: %+v", cp)
			}
			_, err := d.OpenLog("ns", "p", "c")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), file) {
					t.Fatalf("OpenLog: %v, want %q naming %s", err, tt.wantErr, file)
				}
				if _, err := d.OpenLog("ns", "new", "c"); err == nil {
					t.Fatal("a new container of the namespace was not refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			commit(t, d, "ns", "p", "c", Checkpoint{Instance: "i2"})
			if b, _ := os.ReadFile(file); strings.Contains(string(b), "torn") || !strings.HasSuffix(string(b), "\n") {
				t.Fatalf("the torn line was not overwritten:\n%s", b)
			}
			if cp := checkpointOf(t, d, "ns", "p", "c"); cp == nil || cp.Instance != "i2" {
				t.Fatalf("after the save: %+v", cp)
			}
		})
	}
}

// Saving appends; the file is rewritten with one line per container once it grows past twice
// that, and what is read back is always the last checkpoint of each container.
func TestCheckpointFileCompaction(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	containers, saves := 3, 3*compactMin
	logs := make([]*Log, containers)
	for i := range logs {
		var err error
		if logs[i], err = d.OpenLog("ns", "p", fmt.Sprint("c", i)); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, ".logexport", "checkpoints", "ns.jsonl")
	maxLines := 0
	for n := range saves {
		if err := logs[n%containers].Commit(Checkpoint{Instance: "i", Lines: int64(n)}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		maxLines = max(maxLines, strings.Count(string(b), "\n"))
	}
	for _, l := range logs {
		l.Close()
	}
	d.Close()
	if maxLines > compactMin {
		t.Fatalf("the file grew to %d lines for %d containers", maxLines, containers)
	}
	d = mustOpen(t, dir)
	defer d.Close()
	for i := range containers {
		if cp := checkpointOf(t, d, "ns", "p", fmt.Sprint("c", i)); cp == nil || cp.Lines != int64(saves-containers+i) {
			t.Fatalf("c%d: %+v, want the last of its saves (%d)", i, cp, saves-containers+i)
		}
	}
}

// A directory of format version 1 (a checkpoint file per container) is converted on open; a
// conversion interrupted after the version was recorded finishes by removing the old files.
func TestUpgradeFromVersion1(t *testing.T) {
	v1 := map[string]string{
		"ns/p/c.json":      `{"version":1,"instance":"i1","since":"2024-01-01T00:00:01Z","skip":2,"hash":"1f","last":"2024-01-01T00:00:01.5Z","size":8,"lines":2}`,
		"ns/p/c.json.tmp":  `{"vers`,
		"ns/q/c.json":      `{"version":1,"instance":"","since":"0001-01-01T00:00:00Z","skip":0,"hash":"0","last":"0001-01-01T00:00:00Z","size":0,"lines":0}`,
		"other/r/app.json": `{"version":1,"podUID":"u","instance":"i3","since":"2024-01-01T00:00:05Z","skip":1,"hash":"a","last":"2024-01-01T00:00:05Z","size":3,"lines":1}`,
	}
	logs := map[string]string{"ns/p/c.log": "one\ntwo\nextra\n", "ns/q/c.log": "partial\n", "other/r/app.log": "xy\n"}
	for _, interrupted := range []bool{false, true} {
		t.Run(fmt.Sprint("interrupted=", interrupted), func(t *testing.T) {
			dir := t.TempDir()
			write := func(rel, data string) {
				p := filepath.Join(dir, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(".logexport/meta.json", `{"version": 1, "timestamps": false}`)
			for rel, data := range v1 {
				write(".logexport/state/"+rel, data)
			}
			for rel, data := range logs {
				write(rel, data)
			}
			if interrupted {
				// As left by a run that recorded version 2 and stopped before removing the old files.
				d := mustOpen(t, dir)
				d.Close()
				write(".logexport/state/ns/p/c.json", v1["ns/p/c.json"])
			}
			d := mustOpen(t, dir)
			defer d.Close()
			if d.Meta().Version != FormatVersion {
				t.Fatalf("version %d", d.Meta().Version)
			}
			if _, err := os.Stat(filepath.Join(dir, ".logexport", "state")); !os.IsNotExist(err) {
				t.Fatalf("the version 1 checkpoints are still there: %v", err)
			}
			want := map[[3]string]Checkpoint{
				{"ns", "p", "c"}: {Instance: "i1", Since: time.Date(2024, 1, 1, 0, 0, 1, 0, time.UTC), Skip: 2, Hash: 0x1f,
					Last: time.Date(2024, 1, 1, 0, 0, 1, 5e8, time.UTC), Size: 8, Lines: 2},
				{"other", "r", "app"}: {PodUID: "u", Instance: "i3", Since: time.Date(2024, 1, 1, 0, 0, 5, 0, time.UTC), Skip: 1, Hash: 0xa,
					Last: time.Date(2024, 1, 1, 0, 0, 5, 0, time.UTC), Size: 3, Lines: 1},
			}
			for k, cp := range want {
				got := checkpointOf(t, d, k[0], k[1], k[2])
				if got == nil || !reflect.DeepEqual(*got, cp) {
					t.Errorf("%v: %+v, want %+v", k, got, cp)
				}
			}
			// The empty checkpoint of an unfinished first export still lets its file be cut back.
			if cp := checkpointOf(t, d, "ns", "q", "c"); cp != nil {
				t.Errorf("ns/q/c: %+v, want none (an unfinished first export)", cp)
			}
			for rel, want := range map[string]string{"ns/p/c.log": "one\ntwo\n", "ns/q/c.log": ""} {
				if b, _ := os.ReadFile(filepath.Join(dir, rel)); string(b) != want {
					t.Errorf("%s: %q, want %q", rel, b, want)
				}
			}
		})
	}
}

// After a write to the log fails (a full disk), nothing more is committed: a checkpoint saved
// then would describe bytes the file never got.
func TestNoCommitAfterFailedWrite(t *testing.T) {
	tests := []struct {
		name  string
		write func(l *Log) error
	}{
		{"buffer full", func(l *Log) error {
			_, err := l.Write(make([]byte, 2*writeBufferSize))
			return err
		}},
		{"flush", func(l *Log) error {
			if _, err := l.Write([]byte("two\n")); err != nil {
				return err
			}
			l.EndLine()
			return l.Flush()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			defer d.Close()
			l := mustOpenLog(t, d, "ns", "p", "c")
			if _, err := l.Write([]byte("one\n")); err != nil {
				t.Fatal(err)
			}
			l.EndLine()
			if err := l.Commit(Checkpoint{Instance: "i", Lines: 1}); err != nil {
				t.Fatal(err)
			}
			// Writes to the log fail from here on, as on a full disk.
			good := l.f
			var err error
			if l.f, err = os.Open(l.Path()); err != nil {
				t.Fatal(err)
			}
			if err := tt.write(l); err == nil {
				t.Fatal("the write did not fail")
			}
			l.EndLine()
			if err := l.Commit(Checkpoint{Instance: "i", Lines: 2}); err == nil {
				t.Fatal("Commit after a failed write succeeded")
			}
			l.f.Close()
			l.f = good
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if cp := checkpointOf(t, d, "ns", "p", "c"); cp == nil || cp.Lines != 1 || cp.Size != 4 {
				t.Fatalf("checkpoint %+v, want the one before the failure", cp)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "ns", "p", "c.log")); string(b) != "one\n" {
				t.Fatalf("file %q", b)
			}
		})
	}
}

func mustOpen(t *testing.T, dir string) *Dir {
	t.Helper()
	d, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A format version 1 directory that never exported a container has no state directory at all.
func TestUpgradeFromVersion1WithoutCheckpoints(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".logexport"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".logexport", "meta.json"), []byte(`{"version": 1, "timestamps": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Meta().Version != FormatVersion {
		t.Fatalf("version %d", d.Meta().Version)
	}
}

// A checkpoint file that could not be read is read again by the next OpenLog, rather than
// refusing the namespace for the rest of a follow run.
func TestCheckpointFileReadAgainAfterError(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	defer d.Close()
	file := filepath.Join(dir, ".logexport", "checkpoints", "ns.jsonl")
	if err := os.Mkdir(file, 0o755); err != nil { // reading it fails
		t.Fatal(err)
	}
	if _, err := d.OpenLog("ns", "p", "c"); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("OpenLog: %v, want an error naming %s", err, file)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	commit(t, d, "ns", "p", "c", Checkpoint{Instance: "i"})
	if cp := checkpointOf(t, d, "ns", "p", "c"); cp == nil || cp.Instance != "i" {
		t.Fatalf("checkpoint %+v", cp)
	}
}

// The checkpoint file is open only while logs of its namespace are; closing a log twice is
// harmless.
func TestCheckpointFileClosedWithItsLogs(t *testing.T) {
	d := mustOpen(t, t.TempDir())
	defer d.Close()
	a := mustOpenLog(t, d, "ns", "a", "c")
	b := mustOpenLog(t, d, "ns", "b", "c")
	cps := a.cps
	if err := a.Commit(Checkpoint{Instance: "i"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if cps.file.f == nil {
		t.Fatal("closed while a log of the namespace is open")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if cps.file.f != nil || cps.users != 0 {
		t.Fatalf("open after its last log closed (users %d)", cps.users)
	}
	c := mustOpenLog(t, d, "ns", "c", "c")
	defer c.Close()
	// A log takes a small buffer with its first write, and the next size each time that fills up.
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if cap(c.buf) != smallWriteBufferSize {
		t.Fatalf("write buffer of %d bytes after a double close, want %d", cap(c.buf), smallWriteBufferSize)
	}
	held := 1
	for _, size := range writeBufferSizes[1:] {
		n := cap(c.buf) - len(c.buf) + 1
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if held += n; cap(c.buf) != size || len(c.buf) != held {
			t.Fatalf("write buffer of %d bytes holding %d, want %d holding %d", cap(c.buf), len(c.buf), size, held)
		}
	}
}

// A rewrite that fails leaves every checkpoint in place and is tried again only after the file
// has grown by as much again.
func TestCheckpointFileCompactionRetry(t *testing.T) {
	dir := t.TempDir()
	faults := &faultFS{}
	d, err := Open(dir, false, faults.option(), noSync())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l := mustOpenLog(t, d, "ns", "p", "c")
	defer l.Close()
	faults.set("replace", errors.New("injected"))
	save := func(n int) {
		t.Helper()
		if err := l.Commit(Checkpoint{Instance: "i", Lines: int64(n)}); err != nil {
			t.Fatal(err)
		}
	}
	n := 1
	for ; l.cps.file.lines < compactMin; n++ {
		save(n)
	}
	if l.cps.retryAt != 2*compactMin {
		t.Fatalf("retry at %d lines, want %d", l.cps.retryAt, 2*compactMin)
	}
	faults.set("replace", nil)
	for ; l.cps.file.lines < 2*compactMin-1; n++ {
		save(n)
	}
	save(n)
	if l.cps.file.lines != 1 {
		t.Fatalf("%d lines after the retry, want 1", l.cps.file.lines)
	}
	if cp := mustGet(t, l.cps.cps, containerKey{"p", "c"}); cp.Lines != int64(n) {
		t.Fatalf("checkpoint %+v, want the last save (%d)", cp, n)
	}
}

func mustOpenLog(t *testing.T, d *Dir, namespace, pod, container string) *Log {
	t.Helper()
	l, err := d.OpenLog(namespace, pod, container)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendCheckpointFile adds raw bytes to a namespace's checkpoint file, as damage or a crash
// would leave them, and returns the file's path.
func appendCheckpointFile(t *testing.T, dir, namespace, text string) string {
	t.Helper()
	file := filepath.Join(dir, ".logexport", "checkpoints", namespace+".jsonl")
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	return file
}

// Peek gives the checkpoint only when OpenLog would open the log with it and do nothing else:
// otherwise a run that skips a finished container would miss a removed log (to export again),
// bytes to cut off or the marks of a pod that was gone.
func TestPeek(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string, d *Dir)
		want   bool
	}{
		{"saved", func(*testing.T, string, *Dir) {}, true},
		{"log removed", func(t *testing.T, dir string, _ *Dir) {
			if err := os.Remove(filepath.Join(dir, "ns", "p", "c.log")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"bytes past the checkpoint", func(t *testing.T, dir string, _ *Dir) {
			f, err := os.OpenFile(filepath.Join(dir, "ns", "p", "c.log"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("half"); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}, false},
		{"log replaced by a directory", func(t *testing.T, dir string, _ *Dir) {
			p := filepath.Join(dir, "ns", "p", "c.log")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		// OpenLog refuses a symlink on the way, even one that stays inside the directory (two
		// containers could share a file): a finished container's log found through one is not
		// stored to its end.
		{"pod directory a symlink inside the directory", func(t *testing.T, dir string, _ *Dir) {
			symlinkAside(t, filepath.Join(dir, "ns", "p"), filepath.Join(dir, "ns", "q"))
		}, false},
		{"namespace directory a symlink inside the directory", func(t *testing.T, dir string, _ *Dir) {
			symlinkAside(t, filepath.Join(dir, "ns"), filepath.Join(dir, "other"))
		}, false},
		{"pod gone", func(t *testing.T, _ string, d *Dir) {
			l := mustOpenLog(t, d, "ns", "p", "c")
			cp := *l.Checkpoint()
			cp.Gone = time.Unix(5, 0)
			if err := l.Commit(cp); err != nil {
				t.Fatal(err)
			}
			l.Close()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			defer d.Close()
			if _, cp, err := d.Peek("ns", "p", "c"); cp != nil || err != nil {
				t.Fatalf("Peek before any save: %v, %v", cp, err)
			}
			l := mustOpenLog(t, d, "ns", "p", "c")
			if _, err := l.Write([]byte("one\n")); err != nil {
				t.Fatal(err)
			}
			l.EndLine()
			if err := l.Commit(Checkpoint{Instance: "i", Since: time.Unix(1, 0), Skip: 1, Complete: "i"}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			tc.change(t, dir, d)
			path, cp, err := d.Peek("ns", "p", "c")
			if err != nil || (cp != nil) != tc.want {
				t.Fatalf("Peek: %v, %v; want a checkpoint: %v", cp, err, tc.want)
			}
			if tc.want && (path != filepath.Join(dir, "ns", "p", "c.log") || cp.Complete != "i" || cp.Size != 4) {
				t.Errorf("Peek = %q, %+v", path, cp)
			}
			if cp == nil {
				return
			}
			// What Peek gives, OpenLog opens with, finding nothing else.
			l, err = d.OpenLog("ns", "p", "c")
			if err != nil {
				t.Fatalf("Peek gave %+v, OpenLog failed: %v", cp, err)
			}
			defer l.Close()
			if got := l.Checkpoint(); got == nil || *got != *cp || l.Found() != (Found{}) || l.Path() != path || l.Length() != cp.Size {
				t.Errorf("Peek gave %q, %+v; OpenLog opened %q at %d with %+v, found %+v", path, cp, l.Path(), l.Length(), got, l.Found())
			}
		})
	}
	d := mustOpen(t, t.TempDir())
	defer d.Close()
	if _, _, err := d.Peek("ns", "../p", "c"); err == nil {
		t.Error("Peek accepted an unsafe pod name")
	}
}

// symlinkAside moves a directory to aside and leaves a symlink to it in its place.
func symlinkAside(t *testing.T, dir, aside string) {
	t.Helper()
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(aside), dir); err != nil {
		t.Fatal(err)
	}
}

// A log removed while its checkpoint stayed is exported again from the start, into its temporary
// file; a run killed before that export's first save leaves the file beside the old checkpoint.
// The next run must start again, not take the file in under the old checkpoint (which would cut
// it at the old size, into other lines).
func TestRemovedLogKilledReexport(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	l := mustOpenLog(t, d, "ns", "p", "c")
	if _, err := l.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
	if err := l.Commit(Checkpoint{Instance: "i", Since: time.Unix(1, 0), Skip: 1}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "ns", "p", "c.log")
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}

	l = mustOpenLog(t, d, "ns", "p", "c")
	if !l.Reset || l.Checkpoint() != nil {
		t.Fatalf("removed log: Reset %v, checkpoint %+v; want a reset without checkpoint", l.Reset, l.Checkpoint())
	}
	if _, err := l.Write([]byte("zwei\nthree\n")); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "ns", "p", ".c.log.new")
	left, err := os.ReadFile(tmp)
	if err != nil || string(left) != "zwei\nthree\n" {
		t.Fatalf("temporary file %q, %v", left, err)
	}
	// What a kill leaves: the temporary file as written, no save after the reset.
	l.Close()
	d.Close()
	if err := os.WriteFile(tmp, left, 0o600); err != nil {
		t.Fatal(err)
	}

	d = mustOpen(t, dir)
	defer d.Close()
	l = mustOpenLog(t, d, "ns", "p", "c")
	if cp := l.Checkpoint(); cp != nil || l.Length() != 0 {
		t.Fatalf("after the killed re-export: checkpoint %+v, length %d; want to start again", cp, l.Length())
	}
	if _, err := l.Write([]byte("eins\n")); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
	if err := l.Commit(Checkpoint{Instance: "j", Since: time.Unix(2, 0), Skip: 1}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(logPath); err != nil || string(b) != "eins\n" {
		t.Fatalf("log %q, %v; want %q", b, err, "eins\n")
	}
}

// CommitLines saves the complete lines and keeps what was written of the current one, whether
// it is still buffered or already in the file: the line goes on and ends in the file whole; a
// run killed before it ended leaves a file that the next opening cuts back to the lines.
func TestCommitLinesKeepsTheLineBegun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flushed bool // the line's start was written out before the commit
		ended   bool // the line ends and is committed, else the run is killed
		want    string
	}{
		{"buffered, ended", false, true, "one\nhalf and the rest\n"},
		{"in the file, ended", true, true, "one\nhalf and the rest\n"},
		{"buffered, killed", false, false, "one\n"},
		{"in the file, killed", true, false, "one\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			defer d.Close()
			l := mustOpenLog(t, d, "ns", "p", "c")
			write := func(s string) {
				t.Helper()
				if _, err := l.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			write("one\n")
			l.EndLine()
			write("half")
			if tc.flushed {
				if err := l.flush(); err != nil {
					t.Fatal(err)
				}
			}
			cp := Checkpoint{Instance: "i", Since: time.Unix(1, 0), Skip: 1}
			if err := l.CommitLines(cp); err != nil {
				t.Fatal(err)
			}
			if l.Committed() != 4 || l.Length() != 4 {
				t.Fatalf("after CommitLines: committed %d, length %d, want 4 and 4", l.Committed(), l.Length())
			}
			write(" and the rest\n")
			l.EndLine()
			if tc.ended {
				if err := l.Commit(cp); err != nil {
					t.Fatal(err)
				}
			} else if err := l.flush(); err != nil { // killed after a write, before the commit
				t.Fatal(err)
			}
			l2 := mustOpenLog(t, d, "ns", "p", "c")
			defer l2.Close()
			file := filepath.Join(dir, "ns", "p", "c.log")
			if b, _ := os.ReadFile(file); string(b) != tc.want {
				t.Fatalf("file %q, want %q", b, tc.want)
			}
			if got := l2.Checkpoint().Size; got != int64(len(tc.want)) {
				t.Fatalf("checkpoint size %d, want %d", got, len(tc.want))
			}
		})
	}
}
