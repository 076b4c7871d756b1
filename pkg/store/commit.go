package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// committer saves checkpoints in rounds (group commit): a checkpoint may only reach the disk after
// the log bytes it covers, so each commit costs a sync of the log and one of the checkpoint file,
// and a run over thousands of small logs would pay two syncs per container, one after the other.
// Instead, the commits that arrive while a round is being synced wait and go together in the
// next: one concurrent sync of every dirty log and new directory entry (on Linux, one syncfs of
// the file system when they are many and all on it), then the checkpoint lines appended to each
// namespace's file in one write. The sync of those lines goes with the next round's syncs when
// commits are queued for it already (under load, where rounds follow each other, that saves a
// journal commit of the file system per round), and is done at once otherwise; a commit returns
// once its checkpoint is durable either way.
type committer struct {
	dir *Dir

	mu    sync.Mutex
	queue []*commitReq
	busy  bool // a round is running; the next is led by the first request queued meanwhile
	// rounds counts the rounds run, and gathers those whose leader waited for more, for tests.
	rounds, gathers int
	// carried are the checkpoint files the last round wrote and left to the next round to sync,
	// with the requests that wait for it.
	carried []written
	// open counts the logs open, which may yet commit (see gather).
	open atomic.Int64
	// arrived, while a leader gathers, is closed by the next request or log closed.
	arrived chan struct{}
}

// written is a checkpoint file whose new lines are not synced yet, and the requests they save.
type written struct {
	cps  *checkpoints
	reqs []*commitReq
}

type commitReq struct {
	// log is nil for a request that records gaps only (Dir.RecordGaps).
	log *Log
	// gaps, of the container key, go to the gap file gf before the checkpoint is saved.
	gf   *gapFile
	key  containerKey
	gaps []Gap
	dirs []string // directories whose new entries the checkpoint depends on
	cp   Checkpoint
	err  error
	// written is set once the checkpoint line is in the file, even if syncing it failed: the
	// next run may read it, so the log must keep the bytes it covers.
	written bool
	// lead says the waiting request is to run the next round (true) or is done (false).
	lead chan bool
	// gather: the request may wait for others to join its round (see committer.gather); at is
	// when it was queued.
	gather bool
	at     time.Time
}

// commit saves r's checkpoint after r's log is synced, batched with the commits of other logs.
func (c *committer) commit(r *commitReq) error {
	r.lead = make(chan bool, 1)
	if c.dir.opts.gatherN > 1 {
		r.at = time.Now()
	}
	c.mu.Lock()
	c.queue = append(c.queue, r)
	c.wake()
	if c.busy {
		c.mu.Unlock()
		if !<-r.lead {
			return r.err
		}
		c.mu.Lock()
	}
	c.busy = true
	c.rounds++
	c.gather()
	batch, carried := c.queue, c.carried
	c.queue, c.carried = nil, nil
	c.mu.Unlock()

	pending := c.round(batch, carried)

	c.mu.Lock()
	if len(c.queue) == 0 && len(pending) > 0 {
		// No round follows to sync the checkpoints with: they are synced now, and commits that
		// arrive meanwhile wait for the next round.
		c.mu.Unlock()
		syncCheckpoints(pending)
		pending = nil
		c.mu.Lock()
	}
	if len(c.queue) > 0 {
		c.carried = pending
		c.queue[0].lead <- true
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	waits := map[*commitReq]bool{}
	for _, w := range pending {
		for _, b := range w.reqs {
			waits[b] = true
		}
	}
	for _, b := range batch {
		if b != r && !waits[b] {
			b.lead <- false
		}
	}
	for _, w := range carried {
		for _, b := range w.reqs {
			b.lead <- false
		}
	}
	if waits[r] {
		<-r.lead // from the leader of the round that syncs r's checkpoint
	}
	return r.err
}

// gather holds the round, with c.mu held (and released while it waits), until more requests
// join it, as Open's GatherCommits asks: up to n of them, only while some open log has none
// queued yet, and only as long as every request it would delay may wait (Log.Finish, which holds
// no log request), none of them for longer than the wait since it was queued (a request whose
// checkpoint line the last round left to this one waited in that round's gathering already).
// Each round costs a sync of the file system (or one of each file, and of the checkpoint file
// after), and each sync a journal commit that stalls the creation of the next logs' files: a
// one-shot run over thousands of small logs, whose commits come a few milliseconds apart, had
// about one round for every four logs (2,000 logs, 1,900 syncs; an eighth of the run's CPU in
// the commits).
func (c *committer) gather() {
	n, wait := c.dir.opts.gatherN, c.dir.opts.gatherWait
	waited := false
	for len(c.queue) < n && c.expected() > 0 {
		left := c.mayWait(wait)
		if left <= 0 {
			break
		}
		if !waited {
			waited = true
			c.gathers++
		}
		arrived := make(chan struct{})
		c.arrived = arrived
		c.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-arrived:
		case <-t.C:
		}
		t.Stop()
		c.mu.Lock()
		c.arrived = nil
	}
}

// mayWait is how much longer the requests queued and carried may wait, with c.mu held: none if
// one of them may not.
func (c *committer) mayWait(wait time.Duration) time.Duration {
	var oldest time.Time
	at := func(r *commitReq) bool {
		if !r.gather {
			return false
		}
		if oldest.IsZero() || r.at.Before(oldest) {
			oldest = r.at
		}
		return true
	}
	for _, r := range c.queue {
		if !at(r) {
			return 0
		}
	}
	for _, w := range c.carried {
		for _, r := range w.reqs {
			if !at(r) {
				return 0
			}
		}
	}
	return time.Until(oldest.Add(wait))
}

// expected is the number of open logs with no request queued or waiting for a round, with c.mu
// held: those that may yet join the next round.
func (c *committer) expected() int64 {
	n := c.open.Load() - int64(len(c.queue))
	for _, w := range c.carried {
		n -= int64(len(w.reqs))
	}
	return n
}

// wake tells a gathering leader, with c.mu held, that a request came or a log closed.
func (c *committer) wake() {
	if c.arrived != nil {
		close(c.arrived)
		c.arrived = nil
	}
}

// closed counts a log closed out of those that may commit.
func (c *committer) closed() {
	c.open.Add(-1)
	c.mu.Lock()
	c.wake()
	c.mu.Unlock()
}

// syncCheckpoints syncs checkpoint files a round wrote, each on its own.
func syncCheckpoints(ws []written) {
	_ = parallel(len(ws), func(i int) error {
		err := ws[i].cps.sync()
		for _, r := range ws[i].reqs {
			r.err = cmpErr(r.err, err)
		}
		return err
	})
}

// round syncs what the checkpoints of batch describe, and the checkpoint files that carried wrote,
// then writes batch's checkpoints; it returns the files written, to be synced.
func (c *committer) round(batch []*commitReq, carried []written) []written {
	d := c.dir
	// First what the checkpoints describe: the logs' bytes and the entries that name them, and
	// the renames of earlier rounds, whose sync was left for now.
	needs := map[string][]*commitReq{}
	for _, r := range batch {
		for _, dir := range r.dirs {
			needs[dir] = append(needs[dir], r)
		}
	}
	d.mu.Lock()
	for dir := range d.dirty {
		if _, ok := needs[dir]; !ok {
			needs[dir] = nil
		}
	}
	clear(d.dirty)
	d.mu.Unlock()
	type job struct {
		run  func() error
		done func() // what a syncfs that covered the job does instead of run
		reqs []*commitReq
		dir  string // a directory, marked dirty again if its sync fails and no request needs it
		// dev is the device of what the job syncs, if known.
		dev   uint64
		devOK bool
	}
	var jobs []job
	// The gaps go first, synced with the logs: no checkpoint may move past a gap that is not
	// recorded.
	gapReqs := map[*gapFile][]*commitReq{}
	for _, r := range batch {
		if len(r.gaps) > 0 {
			gapReqs[r.gf] = append(gapReqs[r.gf], r)
		}
	}
	now := time.Now().UTC()
	for gf, reqs := range gapReqs {
		if err := gf.write(reqs, d.runID(), now); err != nil {
			for _, r := range reqs {
				r.err = cmpErr(r.err, err)
			}
			continue
		}
		jobs = append(jobs, job{run: gf.sync, done: gf.synced, reqs: reqs, dev: gf.file.dev, devOK: gf.file.devOK})
	}
	for _, r := range batch {
		if l := r.log; l != nil && l.unsynced {
			jobs = append(jobs, job{run: func() error {
				if err := l.f.Sync(); err != nil {
					// What the file holds is unknown now: no later commit may count on it.
					return l.fail(hostPathError("sync", l.Path(), err))
				}
				l.unsynced = false
				return nil
			}, done: func() { l.unsynced = false }, reqs: []*commitReq{r}, dev: l.dev, devOK: l.devOK})
		}
	}
	for _, w := range carried {
		jobs = append(jobs, job{run: w.cps.sync, done: w.cps.synced, reqs: w.reqs, dev: w.cps.file.dev, devOK: w.cps.file.devOK})
	}
	for dir, reqs := range needs {
		dev, ok := d.dirDev(dir)
		jobs = append(jobs, job{run: func() error { return d.syncDir(dir) }, reqs: reqs, dir: dir, dev: dev, devOK: ok})
	}
	if d.syncFS(len(jobs), func(i int) (uint64, bool) { return jobs[i].dev, jobs[i].devOK }) {
		start := d.syncBegins()
		if err := d.fs.SyncFS(); err == nil {
			for _, j := range jobs {
				if j.done != nil {
					j.done()
				} else {
					d.synced(j.dir, start)
				}
			}
			jobs = nil
		} else if errors.Is(err, errors.ErrUnsupported) {
			d.noSyncFS.Store(true)
		}
		// Otherwise the syncs of the files tell which of them failed: a write-back error is
		// reported to each file's descriptor on its own.
	}
	// A request may wait for several jobs (its log and the directories made for it), which may
	// fail at once.
	var errMu sync.Mutex
	_ = parallel(len(jobs), func(i int) error {
		err := jobs[i].run()
		if err != nil {
			errMu.Lock()
			for _, r := range jobs[i].reqs {
				r.err = cmpErr(r.err, err)
			}
			errMu.Unlock()
			if jobs[i].reqs == nil {
				d.markDirty(jobs[i].dir)
			}
		}
		return err
	})
	// Then the checkpoint lines, one write per namespace file.
	files := map[*checkpoints][]*commitReq{}
	var order []*checkpoints
	for _, r := range batch {
		if r.err != nil || r.log == nil {
			continue
		}
		cps := r.log.cps
		if files[cps] == nil {
			order = append(order, cps)
		}
		files[cps] = append(files[cps], r)
	}
	var pending []written
	for _, cps := range order {
		reqs := files[cps]
		if err := cps.write(reqs); err != nil {
			for _, r := range reqs {
				r.err = err
			}
			continue
		}
		pending = append(pending, written{cps: cps, reqs: reqs})
	}
	return pending
}

// syncFSMin is the number of syncs in a round from which they are replaced by one syncfs.
// Fewer are synced one by one: syncfs writes back everything dirty on the file system, other
// programs' writes too, which a round of one or two logs should not wait for.
const syncFSMin = 6

// syncFS tells whether the n syncs of a round, whose devices dev tells, are to be replaced by one
// syncfs of the directory's file system: where there is one, and only if every file and
// directory they sync is on it (a mount point inside the directory is on another file system,
// which syncfs would not sync).
func (d *Dir) syncFS(n int, dev func(i int) (uint64, bool)) bool {
	if n < d.opts.syncFSMin || n == 0 || !d.devOK || d.noSyncFS.Load() {
		return false
	}
	for i := range n {
		if v, ok := dev(i); !ok || v != d.dev {
			return false
		}
	}
	return true
}

// cmpErr keeps the first error.
func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// parallel runs fn(0) ... fn(n-1) concurrently and joins their errors.
func parallel(n int, fn func(i int) error) error {
	switch n {
	case 0:
		return nil
	case 1:
		return fn(0)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
