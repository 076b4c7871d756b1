package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Break tests of GatherCommits (bad6f9a), from a helper.

// commitWithin commits l and fails the test if the commit has not returned within a generous
// deadline (a lost wake-up, a deadlock or an open count that never drops).
func commitWithin(t *testing.T, l *Log, cp Checkpoint, within time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.Finish(cp) }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("commit of %s still waits after %v", l.rel, within)
		return nil
	}
}

// TestBreakGatherOpenFailures: an OpenLog that fails counts no log open, whatever it failed on,
// so that a leader with an endless wait is not held by it: with wait an hour, a commit of the one
// log open goes at once.
func TestBreakGatherOpenFailures(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, false, GatherCommits(8, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// A log file without a checkpoint: refused.
	if err := os.MkdirAll(filepath.Join(dir, "ns", "nocp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ns", "nocp", "c.log"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory where the log would be: not a regular file.
	if err := os.MkdirAll(filepath.Join(dir, "ns", "isdir", "c.log"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A log shorter than its checkpoint.
	commit0 := mustOpenLog(t, d, "ns", "short", "c")
	commit0.Write([]byte("line one\n"))
	commit0.EndLine()
	if err := commitWithin(t, commit0, Checkpoint{Instance: "i"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := commit0.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "ns", "short", "c.log"), 2); err != nil {
		t.Fatal(err)
	}
	// A pod directory that is a file: the log's directory cannot be made.
	if err := os.WriteFile(filepath.Join(dir, "ns", "podfile"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, pod := range []string{"nocp", "isdir", "short", "podfile", "bad/name", ".."} {
		if l, err := d.OpenLog("ns", pod, "c"); err == nil {
			l.Close()
			t.Fatalf("OpenLog of %s: no error", pod)
		}
		if n := d.commits.open.Load(); n != 0 {
			t.Fatalf("after OpenLog of %s failed, %d logs counted open", pod, n)
		}
	}
	// A corrupt checkpoint file in another namespace: refused after its checkpoints are read.
	if err := os.MkdirAll(filepath.Join(dir, ".logexport", "checkpoints"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".logexport", "checkpoints", "bad.jsonl"), []byte("not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := d.OpenLog("bad", "p", "c"); err == nil {
		l.Close()
		t.Fatal("OpenLog in a namespace with a corrupt checkpoint file: no error")
	}
	if n := d.commits.open.Load(); n != 0 {
		t.Fatalf("after OpenLog failures, %d logs counted open", n)
	}
	l := mustOpenLog(t, d, "ns", "ok", "c")
	l.Write([]byte("x\n"))
	l.EndLine()
	if err := commitWithin(t, l, Checkpoint{Instance: "i"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Closed twice: counted once.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := d.commits.open.Load(); n != 0 {
		t.Fatalf("%d logs counted open after every log was closed", n)
	}
}

// TestBreakGatherFailures: logs whose writes, syncs or checkpoint writes fail are closed as any
// other, and count as closed: the open count returns to 0 and a later commit with an endless
// wait goes at once.
func TestBreakGatherFailures(t *testing.T) {
	for _, op := range []string{"sync", "syncdir", "write " + checkpointsPath("ns")} {
		t.Run(op, func(t *testing.T) {
			faults := &faultFS{}
			d, err := Open(t.TempDir(), false, faults.option(), GatherCommits(3, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ls := make([]*Log, 3)
			for i := range ls {
				ls[i] = mustOpenLog(t, d, "ns", fmt.Sprint("p", i), "c")
				ls[i].Write([]byte("line\n"))
				ls[i].EndLine()
				ls[i].newDirs = append(ls[i].newDirs, "ns")
			}
			faults.set(op, errors.New("injected"))
			errs := make(chan error, len(ls))
			for _, l := range ls[:2] {
				go func() { errs <- l.Finish(Checkpoint{Instance: "i"}) }()
			}
			waitFor(t, d, func(c *committer) bool { return len(c.queue) == 2 && c.arrived != nil })
			// The third log closes without a commit while the leader gathers.
			if err := ls[2].Close(); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				select {
				case err := <-errs:
					if err == nil {
						t.Error("a commit succeeded with the fault")
					}
				case <-time.After(time.Minute):
					t.Fatal("a commit still waits")
				}
			}
			faults.set(op, nil)
			for _, l := range ls[:2] {
				l.Close() // may fail: the file is cut back
			}
			if n := d.commits.open.Load(); n != 0 {
				t.Fatalf("%d logs counted open after every log was closed", n)
			}
			l := mustOpenLog(t, d, "ns2", "p", "c")
			l.Write([]byte("x\n"))
			l.EndLine()
			if err := commitWithin(t, l, Checkpoint{Instance: "i"}, time.Minute); err != nil {
				t.Fatal(err)
			}
			l.Close()
		})
	}
}

// TestBreakGatherRandom: logs opened, written, committed (with gaps), closed without a commit,
// gaps recorded without a log, opens that fail, from many goroutines, with gathering on: every
// commit returns, the open count returns to 0, and every checkpoint saved is read back, in this
// run and the next. With an endless wait, a leader goes only when n are queued or no open log
// is left without a request: any miscount hangs.
func TestBreakGatherRandom(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		for _, wait := range []time.Duration{time.Hour, 2 * time.Millisecond} {
			t.Run(fmt.Sprint("seed=", seed, ",wait=", wait), func(t *testing.T) {
				breakGatherRandom(t, uint64(seed), wait)
			})
		}
	}
}

func breakGatherRandom(t *testing.T, seed uint64, wait time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 77))
	n := 1 + rng.IntN(6)
	opts := []Option{GatherCommits(n, wait)}
	if rng.IntN(2) == 0 {
		opts = append(opts, SyncFSMin(1+rng.IntN(4)))
	}
	dir := t.TempDir()
	d, err := Open(dir, false, opts...)
	if err != nil {
		t.Fatal(err)
	}
	// A log file without a checkpoint, which OpenLog refuses.
	if err := os.MkdirAll(filepath.Join(dir, "ns0", "refused"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ns0", "refused", "c.log"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const workers, steps = 6, 25
	type saved struct {
		size, lines int64
	}
	var mu sync.Mutex
	want := map[string]saved{} // by namespace/pod, each worker's own pods
	var commits atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wrng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() {
			for s := range steps {
				ns := fmt.Sprint("ns", wrng.IntN(3))
				pod := fmt.Sprintf("w%d-%d", w, wrng.IntN(3))
				switch wrng.IntN(8) {
				case 0:
					if l, err := d.OpenLog("ns0", "refused", "c"); err == nil {
						l.Close()
						t.Error("refused log opened")
					}
					continue
				case 1:
					done := make(chan error, 1)
					go func() {
						done <- d.RecordGaps(ns, pod, "gone", []Gap{{Reason: fmt.Sprint("gone ", s)}})
					}()
					select {
					case err := <-done:
						if err != nil {
							t.Error(err)
						}
					case <-time.After(2 * time.Minute):
						t.Error("RecordGaps still waits")
						return
					}
					continue
				}
				l, err := d.OpenLog(ns, pod, "c")
				if err != nil {
					t.Error(err)
					return
				}
				var lines int64
				if cp := l.Checkpoint(); cp != nil {
					lines = cp.Lines
				}
				k := wrng.IntN(4) // commits, 0: closed without one
				for range k {
					for range 1 + wrng.IntN(3) {
						l.Write([]byte("a line\n"))
						l.EndLine()
						lines++
					}
					if wrng.IntN(4) == 0 {
						l.AddGaps(Gap{Reason: "a gap"})
					}
					if wrng.IntN(3) == 0 {
						l.Write([]byte("partial")) // dropped by the commit
					}
					if wrng.IntN(4) == 0 {
						time.Sleep(time.Duration(wrng.IntN(3)) * time.Millisecond)
					}
					done := make(chan error, 1)
					commit := l.Finish
					if wrng.IntN(3) == 0 {
						commit = l.Commit // one that may not wait: it ends any gathering
					}
					go func() { done <- commit(Checkpoint{Instance: "i", Lines: lines}) }()
					select {
					case err := <-done:
						if err != nil {
							t.Error(err)
							return
						}
					case <-time.After(2 * time.Minute):
						t.Errorf("commit of %s/%s still waits", ns, pod)
						return
					}
					commits.Add(1)
					mu.Lock()
					want[ns+"/"+pod] = saved{l.Committed(), lines}
					mu.Unlock()
				}
				if wrng.IntN(3) == 0 {
					l.Write([]byte("uncommitted\n"))
					l.EndLine()
				}
				if err := l.Close(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	c := &d.commits
	c.mu.Lock()
	rounds, busy, queued, carried := c.rounds, c.busy, len(c.queue), len(c.carried)
	c.mu.Unlock()
	if busy || queued > 0 || carried > 0 {
		t.Fatalf("after every commit: busy %v, %d queued, %d carried", busy, queued, carried)
	}
	if n := c.open.Load(); n != 0 {
		t.Fatalf("%d logs counted open after every log was closed", n)
	}
	t.Logf("n=%d: %d commits in %d rounds", n, commits.Load(), rounds)
	check := func(d *Dir) {
		for k, s := range want {
			ns, pod := k[:3], k[4:]
			cp := checkpointOf(t, d, ns, pod, "c")
			if cp == nil || cp.Size != s.size || cp.Lines != s.lines {
				t.Errorf("%s: checkpoint %+v, want size %d, %d lines", k, cp, s.size, s.lines)
			}
			fi, err := os.Stat(filepath.Join(dir, ns, pod, "c.log"))
			if err != nil || fi.Size() != s.size {
				t.Errorf("%s: log file %v, %v; want %d bytes", k, fi, err, s.size)
			}
		}
		if n := d.commits.open.Load(); n != 0 {
			t.Errorf("%d logs counted open after the checks", n)
		}
	}
	check(d)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir)
	defer d.Close()
	check(d)
}

// TestBreakRoundSyncErrorsRace: a new log's first commit depends on the sync of each directory
// made for it and of the log itself, run concurrently; when several of them fail, each sets the
// request's error (found by TestBreakGatherFailures/syncdir under -race; not new in bad6f9a).
func TestBreakRoundSyncErrorsRace(t *testing.T) {
	faults := &faultFS{}
	d, err := Open(t.TempDir(), false, faults.option())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l := mustOpenLog(t, d, "ns", "p", "c")
	if len(l.newDirs) < 2 {
		t.Fatalf("new dirs %q: want the namespace's and the pod's", l.newDirs)
	}
	l.Write([]byte("line\n"))
	l.EndLine()
	faults.set("syncdir", errors.New("injected"))
	faults.set("sync", errors.New("injected"))
	if err := l.Commit(Checkpoint{Instance: "i"}); err == nil {
		t.Fatal("commit succeeded with failing syncs")
	}
	faults.set("syncdir", nil)
	faults.set("sync", nil)
	l.Close()
}

// TestBreakGatherCarried: a commit waits for at most one gathering. A's round gathers for the
// whole wait (C stays open without a commit); B's commit comes while that round syncs, so A's
// checkpoint line is left for B's round to sync. B's round must not gather again (with bad6f9a it
// did, and A waited about twice the wait), and A's checkpoint must be durable when it returns.
func TestBreakGatherCarried(t *testing.T) {
	const wait = 3 * time.Second
	dir := t.TempDir()
	rec, err := NewRecorder(dir)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	d, err := Open(dir, false, rec.Option(), g.option(), SyncFSMin(1<<30), GatherCommits(8, wait))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, b, c := mustOpenLog(t, d, "ns", "a", "c"), mustOpenLog(t, d, "ns", "b", "c"), mustOpenLog(t, d, "ns", "c", "c")
	for _, l := range []*Log{a, b} {
		l.Write([]byte("line\n"))
		l.EndLine()
	}
	g.armed.Store(true)
	start := time.Now()
	aDone, bDone := make(chan error, 1), make(chan error, 1)
	var aOps int
	go func() {
		err := a.Finish(Checkpoint{Instance: "i", Lines: 1})
		aOps = rec.Ops()
		aDone <- err
	}()
	<-g.entered // A's round, after its gathering, in its first sync
	gathered := time.Since(start)
	if gathered < wait {
		t.Fatalf("A's round began after %v, before the wait (C is open)", gathered)
	}
	go func() { bDone <- b.Finish(Checkpoint{Instance: "i", Lines: 1}) }()
	waitFor(t, d, func(c *committer) bool { return len(c.queue) == 1 })
	close(g.release)
	var aErr error
	select {
	case aErr = <-aDone:
	case <-time.After(time.Minute):
		t.Fatal("A's commit still waits")
	}
	if aErr != nil {
		t.Fatal(aErr)
	}
	// B's round goes without a gathering of its own, C open or not.
	awaitCommits(t, d, bDone, 1, 2)
	cm := &d.commits
	cm.mu.Lock()
	gathers := cm.gathers
	cm.mu.Unlock()
	if gathers != 1 {
		t.Errorf("%d rounds gathered; want the first only (A gathered %v in its own)", gathers, gathered)
	}
	rec.mu.Lock()
	ops := append([]fsOp(nil), rec.ops...)
	cpIno := rec.live[checkpointsPath("ns")]
	rec.mu.Unlock()
	if !durable(ops[:aOps], cpIno) {
		t.Errorf("A's commit returned before its checkpoint was durable:\n%s", opsTrace(ops[:aOps]))
	}
	a.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	for _, pod := range []string{"a", "b"} {
		if cp := checkpointOf(t, d, "ns", pod, "c"); cp == nil || cp.Size != 5 {
			t.Errorf("%s: checkpoint %+v", pod, cp)
		}
	}
}

// TestBreakGatherRandomFaults: as TestBreakGatherRandom, with syncs, directory syncs and writes
// failing now and then while leaders gather, and a goroutine that holds one log open while it
// commits another (the wait bounds its commits): every commit returns, the open count returns
// to 0, and every log opens again in the next run (none shorter than its checkpoint).
func TestBreakGatherRandomFaults(t *testing.T) {
	for seed := range 4 {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 99))
			dir := t.TempDir()
			faults := &faultFS{}
			opts := []Option{faults.option(), GatherCommits(1+rng.IntN(6), 3*time.Millisecond)}
			if rng.IntN(2) == 0 {
				opts = append(opts, SyncFSMin(1+rng.IntN(4)))
			}
			d, err := Open(dir, false, opts...)
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var fwg sync.WaitGroup
			fwg.Go(func() {
				frng := rand.New(rand.NewPCG(uint64(seed), 100))
				ops := []string{"sync", "syncdir", "write", "write " + checkpointsPath("ns1")}
				for {
					select {
					case <-stop:
						for _, op := range ops {
							faults.set(op, nil)
						}
						return
					case <-time.After(time.Duration(frng.IntN(3000)) * time.Microsecond):
					}
					op := ops[frng.IntN(len(ops))]
					if frng.IntN(2) == 0 {
						faults.set(op, errors.New("injected"))
					} else {
						faults.set(op, nil)
					}
				}
			})
			var failed atomic.Int64
			var wg sync.WaitGroup
			for w := range 6 {
				wrng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
				wg.Go(func() {
					var held *Log
					if w == 0 {
						held = mustOpenLogOr(t, d, "ns0", "held", "c")
					}
					for range 20 {
						ns := fmt.Sprint("ns", wrng.IntN(3))
						pod := fmt.Sprintf("w%d-%d", w, wrng.IntN(3))
						if wrng.IntN(6) == 0 {
							if err := d.RecordGaps(ns, pod, "gone", []Gap{{Reason: "gone"}}); err != nil {
								failed.Add(1)
							}
							continue
						}
						l, err := d.OpenLog(ns, pod, "c")
						if err != nil {
							failed.Add(1)
							continue
						}
						for range wrng.IntN(4) {
							l.Write([]byte("a line\n"))
							l.EndLine()
							if wrng.IntN(4) == 0 {
								l.AddGaps(Gap{Reason: "a gap"})
							}
							done := make(chan error, 1)
							commit := l.Finish
							if wrng.IntN(3) == 0 {
								commit = l.Commit
							}
							go func() { done <- commit(Checkpoint{Instance: "i"}) }()
							select {
							case err := <-done:
								if err != nil {
									failed.Add(1)
								}
							case <-time.After(2 * time.Minute):
								t.Errorf("commit of %s/%s still waits", ns, pod)
								return
							}
						}
						l.Close()
					}
					if held != nil {
						held.Close()
					}
				})
			}
			wg.Wait()
			close(stop)
			fwg.Wait()
			if t.Failed() {
				return
			}
			if n := d.commits.open.Load(); n != 0 {
				t.Fatalf("%d logs counted open after every log was closed", n)
			}
			t.Logf("%d operations failed", failed.Load())
			if err := d.Close(); err != nil {
				t.Logf("Close: %v", err)
			}
			d = mustOpen(t, dir)
			defer d.Close()
			for ns := range 3 {
				for w := range 6 {
					for p := range 3 {
						l, err := d.OpenLog(fmt.Sprint("ns", ns), fmt.Sprintf("w%d-%d", w, p), "c")
						if err != nil {
							t.Errorf("the next run: %v", err)
							continue
						}
						l.Close()
					}
				}
			}
		})
	}
}

func mustOpenLogOr(t *testing.T, d *Dir, ns, pod, c string) *Log {
	l, err := d.OpenLog(ns, pod, c)
	if err != nil {
		t.Error(err)
	}
	return l
}

// TestBreakGatherDirClose: the Dir closed while a leader gathers (a run that ends with a log
// still open): the commit returns once the last other log closes, the open count returns to
// 0, and a commit that reports success has its checkpoint durable.
func TestBreakGatherDirClose(t *testing.T) {
	dir := t.TempDir()
	rec, err := NewRecorder(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir, false, rec.Option(), GatherCommits(8, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a := mustOpenLog(t, d, "ns", "a", "c")
	a.Write([]byte("one\n"))
	a.EndLine()
	if err := commitWithin(t, a, Checkpoint{Instance: "i"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	c := mustOpenLog(t, d, "ns", "c", "c")
	a.Write([]byte("two\n"))
	a.EndLine()
	done := make(chan error, 1)
	var ops int
	go func() {
		err := a.Finish(Checkpoint{Instance: "i", Lines: 2})
		ops = rec.Ops()
		done <- err
	}()
	waitFor(t, d, func(c *committer) bool { return c.arrived != nil })
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	select {
	case err := <-closed:
		t.Logf("Dir.Close: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("Dir.Close waits for the gathering leader")
	}
	c.Close()
	var cerr error
	select {
	case cerr = <-done:
		t.Logf("commit: %v", cerr)
	case <-time.After(time.Minute):
		t.Fatal("the commit still waits after every other log closed")
	}
	a.Close()
	if n := d.commits.open.Load(); n != 0 {
		t.Fatalf("%d logs counted open after every log was closed", n)
	}
	if cerr == nil {
		rec.mu.Lock()
		all := append([]fsOp(nil), rec.ops...)
		cpIno := rec.live[checkpointsPath("ns")]
		rec.mu.Unlock()
		if !durable(all[:ops], cpIno) {
			t.Errorf("the commit returned before its checkpoint was durable:\n%s", opsTrace(all[:ops]))
		}
	}
}
