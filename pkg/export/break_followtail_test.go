package export

// Adversarial tests of 391b6a4: a follower's streams (the catch-up stream, the followed one, and
// every reconnect) resume from the log's tail too. A randomized follower against the log server
// (appends with partial entries, stderr stamped back, identical lines, rotations and restarts at
// sync points and between the catch-up and the followed stream, reconnects at random moments,
// small ResumeTail values): its file must be exactly the lines the log served, each once.

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

type ftCfg struct {
	identical  bool // entries may repeat the previous timestamp
	hookOps    bool // rotate/restart/append at the followed request after a catch-up
	randCancel bool // reconnect at random moments (not only at sync points)
	stamps     bool
	tails      []int64 // ResumeTail values drawn from
}

// ftModel is what the API serves of the log read whole, instance by instance: the lines the file
// must hold.
type ftModel struct {
	want   []string
	line   string
	open   bool // a line is begun
	stamps bool
	// inst counts the current instance's complete lines.
	inst int
}

func (m *ftModel) add(es []logserver.Entry) {
	for _, e := range es {
		if !m.open && m.stamps {
			m.line = e.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " "
		}
		m.open = true
		if m.line += e.Text; !e.Partial {
			m.want, m.line, m.open = append(m.want, m.line), "", false
			m.inst++
		}
	}
}

// stop: the instance stopped; its last line, if unfinished, is stored completed.
func (m *ftModel) stop() {
	if m.open {
		m.want, m.line, m.open = append(m.want, m.line), "", false
	}
	m.inst = 0
}

func (m *ftModel) file() string {
	if len(m.want) == 0 {
		return ""
	}
	return strings.Join(m.want, "\n") + "\n"
}

// completeLines is the file up to its last newline.
func completeLines(s string) string {
	return s[:strings.LastIndexByte(s, '\n')+1]
}

// ftFollower follows p0/c into dir in a goroutine, exporting again after every end, with a
// reconnect (a context ended) after a random interval if randCancel.
type ftFollower struct {
	t      *testing.T
	srv    *logserver.Server
	dir    string
	opts   Options
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	errs   []string
	gaps   []string
	runs   int
	cur    context.CancelFunc
	// verbose, if set, is told of each export.
	verbose func(string)
}

func (f *ftFollower) start(seed int64, randCancel bool) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		rng := rand.New(rand.NewSource(seed))
		d, err := store.Open(f.dir, f.opts.Timestamps)
		if err != nil {
			f.t.Error(err)
			return
		}
		defer d.Close()
		e := &Exporter{Client: f.srv.Client(), Dest: d, Options: f.opts}
		for ctx.Err() == nil {
			p := f.srv.Pod("default", "p0")
			if p == nil {
				return
			}
			ectx, ecancel := context.WithCancel(ctx)
			f.mu.Lock()
			f.cur = ecancel
			f.mu.Unlock()
			if randCancel {
				time.AfterFunc(time.Duration(rng.Intn(60))*time.Millisecond, ecancel)
			}
			tgt := breakTarget(f.t, f.srv, "p0", "c")
			res := e.Export(ectx, tgt)
			ecancel()
			f.mu.Lock()
			f.runs++
			if f.verbose != nil {
				f.verbose(fmt.Sprintf("  export: err=%v lines=%d gaps=[%s] complete=%v confirm=%v skipped=%q", res.Err, res.Lines, gapSpans(res), res.Complete, res.Confirm, res.Skipped))
			}
			if res.Err != nil && !errors.Is(res.Err, context.Canceled) && ectx.Err() == nil {
				f.errs = append(f.errs, res.Err.Error())
			}
			if len(res.Gaps) > 0 {
				f.gaps = append(f.gaps, gapSpans(res))
			}
			f.mu.Unlock()
			if ectx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	}()
}

// interrupt ends the current export, as pkg/follow does when the container's status changes.
func (f *ftFollower) interrupt() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != nil {
		f.cur()
	}
}

func (f *ftFollower) stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
		f.cancel = nil
	}
}

// wait waits until the file's complete lines are want; it returns the file.
func (f *ftFollower) wait(want string, d time.Duration) (string, bool) {
	var got string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got = completeLines(readLog(f.t, f.dir, "p0", "c")); got == want {
			return got, true
		}
	}
	return got, false
}

func (f *ftFollower) report() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("runs=%d errs=%q gaps=%q", f.runs, f.errs, f.gaps)
}

// ftSequence runs one random sequence with ResumeTail tail (drawn from cfg.tails if tail is
// nil) and returns what went wrong ("" if nothing).
func ftSequence(t *testing.T, cfg ftCfg, seed int64, force *int64) string {
	rng := rand.New(rand.NewSource(seed))
	gen := &randEntries{rng: rng, clk: time.Now().Add(-time.Duration(rng.Intn(3600)) * time.Second).Truncate(time.Second), identical: cfg.identical}
	srv := gen.server(t)
	defer srv.Close()
	tails := cfg.tails
	if len(tails) == 0 {
		tails = []int64{0, 1, 2, 3, 4, 5, 6, 8, 12, 20}
	}
	tail := tails[rng.Intn(len(tails))]
	if force != nil {
		tail = *force
	} else if v := envIntDefault("BREAK_FT_TAIL", -100); v != -100 {
		tail = int64(v)
	}
	model := &ftModel{stamps: cfg.stamps}
	var log []string
	verbose := envIntDefault("BREAK_FT_VERBOSE", 0) > 0
	var reqMu sync.Mutex
	var reqLog []string
	flushReqs := func() {
		reqMu.Lock()
		log = append(log, reqLog...)
		reqLog = nil
		reqMu.Unlock()
	}
	running := true
	draw := func(n int) []logserver.Entry {
		gen.mu.Lock()
		defer gen.mu.Unlock()
		return gen.entries(n, func(e *logserver.Entry, _ []logserver.Entry) {
			if e.Stream == "stderr" && rng.Intn(3) == 0 {
				e.Time = gen.clk.Add(-time.Duration(rng.Int63n(int64(3 * time.Millisecond))))
				// Never across the second: a stream opened again (a reconnect, a turn) from a
				// checkpoint in that second is not served such a line (README, "What the
				// Kubernetes log API cannot give"), which the comparison cannot allow for.
				if e.Time.Before(gen.clk.Truncate(time.Second)) {
					e.Time = gen.clk.Truncate(time.Second)
				}
			}
		})
	}
	appendN := func(n int) {
		flushReqs()
		es := draw(n)
		srv.Append("default", "p0", "c", es...)
		model.add(es)
		log = append(log, appendedLine(es))
	}
	jump := func() {
		gen.mu.Lock()
		gen.clk = gen.clk.Add(2*time.Second + time.Duration(rng.Int63n(int64(time.Second))))
		// No entry after it repeats an older timestamp: lines logged after a rotation are newer
		// than those before (a resume after one keeps only newer lines, and says so).
		gen.last = time.Time{}
		gen.mu.Unlock()
	}
	// Operations at the next followed request (hook), once armed.
	var armed atomic.Value // func()
	var followedTails, tailReqs, reqs atomic.Int64
	srv.OnLogRequest(func(_, _ string, o *corev1.PodLogOptions) {
		reqs.Add(1)
		if verbose {
			reqMu.Lock()
			desc := fmt.Sprintf("  request follow=%v previous=%v", o.Follow, o.Previous)
			if o.TailLines != nil {
				desc += fmt.Sprintf(" tail=%d", *o.TailLines)
			}
			if o.SinceTime != nil {
				desc += " since=" + o.SinceTime.Format("05")
			}
			reqLog = append(reqLog, desc)
			reqMu.Unlock()
		}
		if o.TailLines != nil {
			tailReqs.Add(1)
			if o.Follow {
				followedTails.Add(1)
			}
		}
		if !o.Follow || o.Previous {
			return
		}
		if fn, _ := armed.Load().(func()); fn != nil {
			armed.Store((func())(nil))
			fn()
		}
	})
	f := &ftFollower{t: t, srv: srv, dir: t.TempDir(), opts: Options{Follow: true, CommitInterval: time.Duration(1+rng.Intn(20)) * time.Millisecond, ResumeTail: tail, Timestamps: cfg.stamps}}
	if verbose {
		f.verbose = func(s string) {
			reqMu.Lock()
			reqLog = append(reqLog, s)
			reqMu.Unlock()
		}
	}
	defer f.stop()
	fail := func(step int, what string) string {
		f.stop()
		flushReqs()
		log = append(log, "checkpoint: "+storedCheckpoint(t, f.dir))
		return fmt.Sprintf("step %d: %s\ntail %d, %+v\n%s\n%s", step, what, tail, cfg, f.report(), strings.Join(log, "\n"))
	}
	open := false
	caught := func(step int) string {
		if !open {
			f.start(rng.Int63(), cfg.randCancel)
			open = true
			log = append(log, "follower started")
		}
		// A complete line served in one read with the start of an unfinished one is written
		// out only once that one ends or the stream does (see TestBreakFollowTailLineBehindPartial):
		// then the follower is stopped to compare, and started again.
		got, ok := f.wait(model.file(), 5*time.Second)
		if !ok && model.open && open {
			f.stop()
			o := f.opts
			o.Follow = false
			res := tailRun(t, srv, f.dir, o)
			log = append(log, fmt.Sprintf("(a line is open: follower stopped, one run: err=%v gaps=[%s])", res.Err, gapSpans(res)))
			got, ok = f.wait(model.file(), time.Second)
			f.start(rng.Int63(), cfg.randCancel)
		}
		if !ok {
			return fail(step, fmt.Sprintf("file never became the log:\ngot  %q\nwant %q", got, model.file()))
		}
		return ""
	}
	steps := 10 + rng.Intn(20)
	for step := range steps {
		if !open && rng.Intn(3) > 0 {
			f.start(seed*31+int64(step), cfg.randCancel)
			open = true
			log = append(log, "follower started")
		}
		switch k := rng.Intn(20); {
		case k < 12:
			if running {
				appendN(1 + rng.Intn(5))
				// More while the stream reads, a little later.
				if rng.Intn(3) == 0 {
					es := draw(1 + rng.Intn(3))
					model.add(es)
					log = append(log, "(soon) "+appendedLine(es))
					time.Sleep(time.Duration(rng.Intn(3)) * time.Millisecond)
					srv.Append("default", "p0", "c", es...)
				}
			}
		case k == 12 && !model.open:
			if msg := caught(step); msg != "" {
				return msg
			}
			srv.Rotate("default", "p0", "c")
			jump()
			flushReqs()
			log = append(log, "rotate")
		case k == 13:
			if msg := caught(step); msg != "" {
				return msg
			}
			jump()
			srv.Restart("default", "p0", "c")
			f.interrupt()
			model.stop()
			running = true
			flushReqs()
			log = append(log, "restart")
		case k == 14 && running:
			if msg := caught(step); msg != "" {
				return msg
			}
			jump()
			srv.Terminate("default", "p0", "c", 0)
			f.interrupt()
			model.stop()
			running = false
			log = append(log, "terminate")
		case k >= 15 && k <= 17 && cfg.hookOps && running && !model.open && model.inst > 0:
			// Closed and caught up, new lines for the catch-up stream, then at the followed
			// request: a rotation, a restart, or new lines.
			if msg := caught(step); msg != "" {
				return msg
			}
			f.stop()
			open = false
			appendN(1 + rng.Intn(4))
			if model.open {
				appendN(1) // may end it, or not: then no rotation (see below)
			}
			op := rng.Intn(3)
			partialLeft := model.open
			var hookEs []logserver.Entry
			var ran atomic.Bool
			switch {
			case op == 0 && !partialLeft:
				jump()
				hookEs = draw(rng.Intn(3))
				model.add(hookEs)
				log = append(log, "at the followed request: rotate, "+appendedLine(hookEs))
				armed.Store(func() {
					ran.Store(true)
					srv.Rotate("default", "p0", "c")
					srv.Append("default", "p0", "c", hookEs...)
				})
			case op == 1:
				jump()
				model.stop()
				hookEs = draw(rng.Intn(3))
				model.add(hookEs)
				log = append(log, "at the followed request: restart, "+appendedLine(hookEs))
				armed.Store(func() {
					ran.Store(true)
					srv.Restart("default", "p0", "c")
					srv.Append("default", "p0", "c", hookEs...)
					// The follower learns of the new status a little later.
					time.AfterFunc(20*time.Millisecond, f.interrupt)
				})
			default:
				hookEs = draw(1 + rng.Intn(3))
				model.add(hookEs)
				log = append(log, "at the followed request: "+appendedLine(hookEs))
				armed.Store(func() {
					ran.Store(true)
					srv.Append("default", "p0", "c", hookEs...)
				})
			}
			f.start(seed*37+int64(step), false)
			open = true
			deadline := time.Now().Add(5 * time.Second)
			for !ran.Load() && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
			if !ran.Load() {
				return fail(step, "no followed request came")
			}
			if msg := caught(step); msg != "" {
				return msg
			}
		case k == 18 && open:
			f.stop()
			open = false
			flushReqs()
			log = append(log, "follower stopped")
		}
	}
	if msg := caught(steps); msg != "" {
		return msg
	}
	f.stop()
	// One more run without a tail stores nothing more.
	res := tailRun(t, srv, f.dir, Options{ResumeTail: -1, Timestamps: cfg.stamps})
	if got := readLog(t, f.dir, "p0", "c"); completeLines(got) != model.file() || res.Err != nil {
		return fail(steps, fmt.Sprintf("after a last run (err %v): got %q\nwant %q", res.Err, got, model.file()))
	}
	t.Logf("seed %d tail %d: %d requests, %d tails, %d followed tails; %s", seed, tail, reqs.Load(), tailReqs.Load(), followedTails.Load(), f.report())
	return ""
}

func TestBreakFollowTailRandom(t *testing.T) {
	cfgs := map[string]ftCfg{
		"plain":         {},
		"identical":     {identical: true},
		"hooks":         {hookOps: true},
		"hooks cancels": {hookOps: true, randCancel: true},
		"identical all": {identical: true, hookOps: true, randCancel: true, stamps: true},
		"cancels small": {randCancel: true, tails: []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20}},
	}
	runTailConfigs(t, cfgs, func(cfg ftCfg, seed int64) string { return ftSequence(t, cfg, seed, nil) })
}
