package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// The lock is opened through the directory's root: a symlink there cannot point it elsewhere, and
// what it opened must be a regular file.
func TestLockThroughRoot(t *testing.T) {
	tests := []struct {
		name    string
		plant   func(t *testing.T, dir, outside string)
		wantErr string
	}{
		{"symlink out of the directory", func(t *testing.T, dir, outside string) {
			if err := os.Symlink(filepath.Join(outside, "lock"), filepath.Join(dir, ".logexport", "lock")); err != nil {
				t.Fatal(err)
			}
		}, "opening the lock"},
		{"directory", func(t *testing.T, dir, _ string) {
			if err := os.Mkdir(filepath.Join(dir, ".logexport", "lock"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, "lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, ".logexport"), 0o700); err != nil {
				t.Fatal(err)
			}
			tt.plant(t, dir, outside)
			if _, err := Open(dir, false); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open: %v, want an error about %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Fatalf("something was created outside: %v", entries)
			}
		})
	}
}

// A symlink inside the directory to another place inside it is refused too: it would let two
// containers share one file.
func TestSymlinkInsideRefused(t *testing.T) {
	tests := []struct{ name, link, target, ns string }{
		{"pod directory", "ns/p", "q", "ns"},
		{"namespace directory", "ns2", "ns", "ns2"},
		{"log file", "ns/p/c.log", "../q/c.log", "ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			defer d.Close()
			commit(t, d, "ns", "q", "c", Checkpoint{Instance: "i"})
			commit(t, d, "other", "p", "c", Checkpoint{Instance: "i"})
			link := filepath.Join(dir, filepath.FromSlash(tt.link))
			if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tt.target, link); err != nil {
				t.Fatal(err)
			}
			pod := "p"
			if tt.ns == "ns2" {
				pod = "q"
			}
			l, err := d.OpenLog(tt.ns, pod, "c")
			if err == nil {
				l.Close()
				t.Fatal("OpenLog followed a symlink inside the directory")
			}
		})
	}
}

// What a crash can leave of a log beside its checkpoint, and what the next open makes of it.
func TestOpenLogAfterCrash(t *testing.T) {
	tests := []struct {
		name string
		// final and tmp are the contents of the log and of its temporary name; "-" for none.
		final, tmp string
		cp         *Checkpoint
		want       string // the file after open and close; "!" for refused
		wantSize   int64
	}{
		{name: "garbage tail cut", final: "one\n\x00\x00\x00", tmp: "-", cp: &Checkpoint{Instance: "i", Size: 4}, want: "one\n", wantSize: 4},
		{name: "uncommitted lines cut", final: "one\ntwo\n", tmp: "-", cp: &Checkpoint{Instance: "i", Size: 4}, want: "one\n", wantSize: 4},
		{name: "renamed after its checkpoint", final: "-", tmp: "one\nmore", cp: &Checkpoint{Instance: "i", Size: 4}, want: "one\n", wantSize: 4},
		{name: "temporary file without checkpoint started again", final: "-", tmp: "junk\n", want: "", wantSize: 0},
		{name: "temporary file shorter than its checkpoint", final: "-", tmp: "on", cp: &Checkpoint{Instance: "i", Size: 4}, want: "", wantSize: 0},
		{name: "shorter than its checkpoint refused", final: "on", tmp: "-", cp: &Checkpoint{Instance: "i", Size: 4}, want: "!"},
		{name: "no checkpoint refused", final: "one\n", tmp: "-", want: "!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			defer d.Close()
			if tt.cp != nil {
				l := mustOpenLog(t, d, "ns", "p", "c")
				if _, err := l.Write([]byte("one\n")); err != nil {
					t.Fatal(err)
				}
				l.EndLine()
				if err := l.Commit(*tt.cp); err != nil {
					t.Fatal(err)
				}
				l.Close()
			}
			final := filepath.Join(dir, "ns", "p", "c.log")
			tmp := filepath.Join(dir, "ns", "p", ".c.log.new")
			if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
				t.Fatal(err)
			}
			for p, data := range map[string]string{final: tt.final, tmp: tt.tmp} {
				os.Remove(p)
				if data != "-" {
					if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			l, err := d.OpenLog("ns", "p", "c")
			if tt.want == "!" {
				if err == nil {
					l.Close()
					t.Fatal("not refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Commit(Checkpoint{Instance: "i"}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(final); err != nil || string(b) != tt.want {
				t.Fatalf("log %q (%v), want %q", b, err, tt.want)
			}
			if _, err := os.Lstat(tmp); !os.IsNotExist(err) {
				t.Fatalf("the temporary file is still there: %v", err)
			}
			if cp := checkpointOf(t, d, "ns", "p", "c"); cp == nil || cp.Size != tt.wantSize {
				t.Fatalf("checkpoint %+v, want size %d", cp, tt.wantSize)
			}
		})
	}
}

// A log that was opened and never committed leaves nothing behind, not even its directory
// entry under the temporary name.
func TestUncommittedNewLogRemoved(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	defer d.Close()
	l := mustOpenLog(t, d, "ns", "p", "c")
	if _, err := l.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "ns", "p")); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

// A checkpoint file whose tail a crash left as NULs (the size kept, not the data), possibly with
// a later line written back before them, is read up to the NULs; the next save replaces the rest.
func TestCheckpointFileNULTail(t *testing.T) {
	tests := []struct{ name, tail string }{
		{"NULs", "\x00\x00\x00\x00"},
		{"NULs then a line", strings.Repeat("\x00", 40) + `{"pod":"p","container":"c","instance":"` + strings.Repeat("lost", 60) + `","size":99}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			commit(t, d, "ns", "p", "c", Checkpoint{Instance: "i1"})
			d.Close()
			file := appendCheckpointFile(t, dir, "ns", tt.tail)
			d = mustOpen(t, dir)
			defer d.Close()
			if cp := checkpointOf(t, d, "ns", "p", "c"); cp == nil || cp.Instance != "i1" {
				t.Fatalf("checkpoint %+v, want i1", cp)
			}
			commit(t, d, "ns", "q", "c", Checkpoint{Instance: "q"})
			b, _ := os.ReadFile(file)
			if strings.Contains(string(b), "\x00") || strings.Contains(string(b), "lost") {
				t.Fatalf("the debris is still there:\n%q", b)
			}
			d.Close()
			d = mustOpen(t, dir)
			if cp := checkpointOf(t, d, "ns", "q", "c"); cp == nil || cp.Instance != "q" {
				t.Fatalf("read back: %+v", cp)
			}
		})
	}
}

// Concurrent commits share rounds of syncs: fewer rounds than commits, and every checkpoint
// saved.
func TestGroupCommit(t *testing.T) {
	d := mustOpen(t, t.TempDir())
	defer d.Close()
	const logs, commits = 8, 20
	ls := make([]*Log, logs)
	for i := range ls {
		ls[i] = mustOpenLog(t, d, "ns", "p", string(rune('a'+i)))
	}
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			for n := range commits {
				if _, err := l.Write([]byte("line\n")); err != nil {
					t.Error(err)
				}
				l.EndLine()
				if err := l.Commit(Checkpoint{Instance: "i", Lines: int64(n + 1)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	rounds := d.commits.rounds
	if rounds >= logs*commits {
		t.Errorf("%d rounds for %d commits: none shared", rounds, logs*commits)
	}
	t.Logf("%d commits in %d rounds", logs*commits, rounds)
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range logs {
		if cp := checkpointOf(t, d, "ns", "p", string(rune('a'+i))); cp == nil || cp.Lines != commits || cp.Size != 5*commits {
			t.Fatalf("checkpoint %+v", cp)
		}
	}
}

// A sync that fails fails the commits that depend on it, and only those; a checkpoint that was
// not saved leaves the log to be cut back to the one before.
func TestCommitSyncFailure(t *testing.T) {
	tests := []struct {
		op       string
		wantSize int64 // of the checkpoint read back after the failure
	}{
		{"sync", 4},    // the log's or the checkpoint file's sync: nothing more saved
		{"syncdir", 4}, // the new log's directory: its first checkpoint is not saved
		{"write", 4},   // the checkpoint line cannot be written
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			dir := t.TempDir()
			faults := &faultFS{}
			d, err := Open(dir, false, faults.option())
			if err != nil {
				t.Fatal(err)
			}
			l := mustOpenLog(t, d, "ns", "p", "c")
			if _, err := l.Write([]byte("one\n")); err != nil {
				t.Fatal(err)
			}
			l.EndLine()
			if err := l.Commit(Checkpoint{Instance: "i"}); err != nil {
				t.Fatal(err)
			}
			faults.set(tt.op, errors.New("injected"))
			if _, err := l.Write([]byte("two\n")); err != nil && tt.op != "write" {
				t.Fatal(err)
			}
			l.EndLine()
			l.newDirs = append(l.newDirs, "ns/p") // as for a new log, so that the directory is synced
			if err := l.Commit(Checkpoint{Instance: "i"}); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("Commit: %v, want the injected error", err)
			}
			faults.set(tt.op, nil)
			l.Close()
			d.Close()
			d = mustOpen(t, dir)
			defer d.Close()
			if cp := checkpointOf(t, d, "ns", "p", "c"); cp == nil || cp.Size != tt.wantSize {
				t.Fatalf("checkpoint %+v, want size %d", cp, tt.wantSize)
			}
		})
	}
}

// Close reports what failed while closing: the last renames' directory sync.
func TestCloseReportsErrors(t *testing.T) {
	dir := t.TempDir()
	faults := &faultFS{}
	d, err := Open(dir, false, faults.option())
	if err != nil {
		t.Fatal(err)
	}
	commit(t, d, "ns", "p", "c", Checkpoint{Instance: "i"}) // renamed: its directory is synced at Close
	faults.set("syncdir", errors.New("injected"))
	if err := d.Close(); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Close: %v, want the injected error", err)
	}
}

// A commit returns once its checkpoint is durable, also when the round that wrote it leaves the
// sync to the round queued after it; with syncfs, that round's one syncfs is the only sync the
// first round's checkpoint line gets.
func TestCommitCarriedSync(t *testing.T) {
	for _, tt := range []struct {
		name          string
		syncFSMin     int
		wantCPSyncs   int // fdatasyncs of the checkpoint file
		wantSyncFSOps int
	}{
		// round 2 syncs round 1's checkpoint with its logs, then its own at once
		{"syncfs", 1, 1, 2},
		// round 2 syncs round 1's checkpoint beside its logs, then its own at once
		{"file by file", math.MaxInt, 2, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			rec, err := NewRecorder(dir)
			if err != nil {
				t.Fatal(err)
			}
			g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
			// The gate is outside the recorder, which holds its lock through a sync.
			d, err := Open(dir, false, rec.Option(), g.option(), SyncFSMin(tt.syncFSMin))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			const logs = 8
			ls := make([]*Log, logs)
			for i := range ls {
				ls[i] = mustOpenLog(t, d, "ns", "p", string(rune('a'+i)))
				if _, err := ls[i].Write([]byte("line\n")); err != nil {
					t.Fatal(err)
				}
				ls[i].EndLine()
			}
			// returned[i] is how many operations were recorded when log i's commit returned.
			returned := make([]int, logs)
			commit := func(i int) {
				if err := ls[i].Commit(Checkpoint{Instance: "i", Lines: 1}); err != nil {
					t.Error(err)
				}
				returned[i] = rec.Ops()
			}
			var wg sync.WaitGroup
			g.armed.Store(true)
			wg.Go(func() { commit(0) })
			// The first round waits in its first sync until the others are queued behind it.
			<-g.entered
			for i := 1; i < logs; i++ {
				wg.Go(func() { commit(i) })
			}
			if err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
				d.commits.mu.Lock()
				defer d.commits.mu.Unlock()
				return len(d.commits.queue) == logs-1, nil
			}); err != nil {
				t.Fatalf("the commits were not queued: %v", err)
			}
			close(g.release)
			wg.Wait()
			if d.commits.rounds != 2 {
				t.Fatalf("%d rounds, want 2", d.commits.rounds)
			}
			rec.mu.Lock()
			ops := slices.Clone(rec.ops)
			cpIno := rec.live[checkpointsPath("ns")]
			rec.mu.Unlock()
			for i, n := range returned {
				if !durable(ops[:n], cpIno) {
					t.Errorf("log %d's commit returned before its checkpoint was durable:\n%s", i, opsTrace(ops[:n]))
				}
			}
			var cpSyncs, syncFS int
			for _, o := range ops {
				switch {
				case o.kind == opSync && o.ino == cpIno:
					cpSyncs++
				case o.kind == opSyncFS:
					syncFS++
				}
			}
			if cpSyncs != tt.wantCPSyncs || syncFS != tt.wantSyncFSOps {
				t.Errorf("%d syncs of the checkpoint file and %d syncfs, want %d and %d:\n%s", cpSyncs, syncFS, tt.wantCPSyncs, tt.wantSyncFSOps, opsTrace(ops))
			}
		})
	}
}

// durable tells whether the last write to inode ino in ops is followed by a sync of it.
func durable(ops []fsOp, ino int) bool {
	synced := true
	for _, o := range ops {
		switch {
		case o.kind == opWrite && o.ino == ino:
			synced = false
		case o.kind == opSync && o.ino == ino, o.kind == opSyncFS:
			synced = true
		}
	}
	return synced
}

func opsTrace(ops []fsOp) string {
	var b strings.Builder
	for _, o := range ops {
		fmt.Fprintln(&b, o)
	}
	return b.String()
}

// gate holds the first sync of any kind, once armed, until release is closed, and tells when it
// is there.
type gate struct {
	armed            atomic.Bool
	once             sync.Once
	entered, release chan struct{}
}

func (g *gate) wait() {
	if !g.armed.Load() {
		return
	}
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
}

func (g *gate) option() Option {
	return func(o *options) {
		inner := o.fs
		o.fs = func(root *os.Root) fsys { return gateFS{inner(root), g} }
	}
}

type gateFS struct {
	fsys
	g *gate
}

func (f gateFS) SyncDir(name string) error { f.g.wait(); return f.fsys.SyncDir(name) }
func (f gateFS) SyncFS() error             { f.g.wait(); return f.fsys.SyncFS() }
func (f gateFS) OpenDir(name string) (fsys, error) {
	inner, err := f.fsys.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return gateFS{inner, f.g}, nil
}
func (f gateFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	inner, err := f.fsys.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return gateFile{inner, f.g}, nil
}

type gateFile struct {
	file
	g *gate
}

func (f gateFile) Sync() error { f.g.wait(); return f.file.Sync() }
