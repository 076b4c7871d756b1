package export

// A randomized comparison of resumes with a tail against resumes without one: two export
// directories follow the same log server, one with a random --resume-tail, the other with -1
// (never a tail). After every step both must store the same bytes and report the same gaps
// (with tail requests cut short, the tail's file must be a prefix of the other's, and equal once
// runs are no longer cut).

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

type tailCfg struct {
	identical bool // entries may repeat the previous timestamp to the nanosecond
	crossBack bool // stderr's timestamps may go back across a second boundary
	cuts      bool // tail requests are cut short at random
	stamps    bool // Options.Timestamps
}

func envIntDefault(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func TestBreakTailRandomAgainstNoTail(t *testing.T) {
	cfgs := map[string]tailCfg{
		"distinct":           {},
		"distinct cuts":      {cuts: true},
		"distinct stamps":    {stamps: true},
		"identical":          {identical: true},
		"cross back":         {crossBack: true},
		"cross back cuts":    {crossBack: true, cuts: true},
		"identical cut, all": {identical: true, crossBack: true, cuts: true, stamps: true},
	}
	runTailConfigs(t, cfgs, func(cfg tailCfg, seed int64) string { return tailSequence(t, cfg, seed) })
}

// runTailConfigs runs BREAK_TAIL_SEQS sequences (from BREAK_TAIL_SEED) of each configuration
// (or only BREAK_TAIL_CFG's), each a subtest; run returns what differed ("" if nothing).
func runTailConfigs[C any](t *testing.T, cfgs map[string]C, run func(cfg C, seed int64) string) {
	seqs := envIntDefault("BREAK_TAIL_SEQS", 20)
	seed0 := int64(envIntDefault("BREAK_TAIL_SEED", 1))
	only := os.Getenv("BREAK_TAIL_CFG")
	for name, cfg := range cfgs {
		if only != "" && only != name {
			continue
		}
		t.Run(name, func(t *testing.T) {
			fails := 0
			for i := range seqs {
				seed := seed0 + int64(i)
				if msg := run(cfg, seed); msg != "" {
					fails++
					if fails <= 3 {
						t.Errorf("seed %d: %s", seed, msg)
					}
				}
			}
			if fails > 0 {
				t.Errorf("%d of %d sequences failed", fails, seqs)
			}
		})
	}
}

// randEntries draws the entries both randomized comparisons append: stdout or stderr, short
// texts, some partial, stamped by a clock that steps by a nanosecond to over a second, or (if
// identical) often with the previous entry's timestamp.
type randEntries struct {
	rng *rand.Rand
	// clk is the newest step, the node clock of the server (see server); mu guards it once
	// the server runs.
	clk       time.Time
	mu        sync.Mutex
	last      time.Time
	identical bool
}

// server is a log server with pod p0 (container c) whose node clock is g's clk.
func (g *randEntries) server(t *testing.T) *logserver.Server {
	srv := p0Server(t)
	srv.NodeClock = func() time.Time {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.clk
	}
	return srv
}

// entries draws n entries. back may stamp an entry back from clk after a step; it is given the
// entries drawn before it in this call, and its draws from rng are part of the sequence.
func (g *randEntries) entries(n int, back func(e *logserver.Entry, drawn []logserver.Entry)) []logserver.Entry {
	texts := []string{"a", "b", "ab", ""}
	var es []logserver.Entry
	for range n {
		e := logserver.Entry{Stream: "stdout"}
		if g.rng.Intn(10) < 3 {
			e.Stream = "stderr"
		}
		e.Text = texts[g.rng.Intn(len(texts))]
		if e.Text != "" && g.rng.Intn(4) == 0 {
			e.Partial = true
		}
		if g.identical && !g.last.IsZero() && g.rng.Intn(3) == 0 {
			e.Time = g.last
		} else {
			steps := []time.Duration{1, time.Microsecond, time.Millisecond, 300 * time.Millisecond, 1100 * time.Millisecond}
			g.clk = g.clk.Add(time.Duration(1 + g.rng.Int63n(int64(steps[g.rng.Intn(len(steps))]))))
			e.Time = g.clk
			back(&e, es)
		}
		g.last = e.Time
		es = append(es, e)
	}
	return es
}

// appendedLine describes appended entries for a sequence's report.
func appendedLine(es []logserver.Entry) string {
	var b strings.Builder
	for _, e := range es {
		tag := "F"
		if e.Partial {
			tag = "P"
		}
		fmt.Fprintf(&b, " [%s %s %s %q]", e.Time.Format("05.000000000"), e.Stream[3:], tag, e.Text)
	}
	return "append" + b.String()
}

// gapSpans are a result's gaps without their reasons, comparable across the two directories.
func gapSpans(res Result) string {
	var s []string
	for _, g := range res.Gaps {
		to := "open"
		if g.To != nil {
			to = g.To.Format("15:04:05.000000000")
		}
		s = append(s, g.From.Format("15:04:05.000000000")+".."+to)
	}
	return strings.Join(s, ",")
}

// tailSequence runs one random sequence and returns what differed ("" if nothing).
func tailSequence(t *testing.T, cfg tailCfg, seed int64) string {
	rng := rand.New(rand.NewSource(seed))
	gen := &randEntries{rng: rng, clk: time.Now().Add(-time.Hour).Truncate(time.Second), identical: cfg.identical}
	srv := gen.server(t)
	defer srv.Close()
	tail := []int64{0, 1, 2, 3, 4, 5, 6, 8, 12}[rng.Intn(9)]
	cutting := false
	var cutRng = rand.New(rand.NewSource(seed * 7))
	var cutMu sync.Mutex
	srv.ShortenLogsFrom("", func(_, _ string, o *corev1.PodLogOptions) (int64, bool) {
		cutMu.Lock()
		defer cutMu.Unlock()
		if !cutting || o.TailLines == nil || cutRng.Intn(2) == 0 {
			return -1, false
		}
		return int64(cutRng.Intn(160)), cutRng.Intn(2) == 0
	})
	dirA, dirB := t.TempDir(), t.TempDir()
	optsA := Options{ResumeTail: tail, Timestamps: cfg.stamps}
	optsB := Options{ResumeTail: -1, Timestamps: cfg.stamps}
	var log []string // what was done, for the report
	running := true
	appendEntries := func() {
		n := 1 + rng.Intn(4)
		gen.mu.Lock()
		es := gen.entries(n, func(e *logserver.Entry, _ []logserver.Entry) {
			if e.Stream == "stderr" && rng.Intn(3) == 0 {
				e.Time = gen.clk.Add(-time.Duration(rng.Int63n(int64(3 * time.Millisecond))))
				if !cfg.crossBack && e.Time.Before(gen.clk.Truncate(time.Second)) {
					e.Time = gen.clk.Truncate(time.Second)
				}
			}
		})
		gen.mu.Unlock()
		srv.Append("default", "p0", "c", es...)
		log = append(log, appendedLine(es))
	}
	compare := func(step int, strict bool) string {
		tgt := breakTarget(t, srv, "p0", "c")
		_ = tgt
		resA := tailRun(t, srv, dirA, optsA)
		resB := tailRun(t, srv, dirB, optsB)
		fa, fb := readLog(t, dirA, "p0", "c"), readLog(t, dirB, "p0", "c")
		ga, gb := gapSpans(resA), gapSpans(resB)
		log = append(log, fmt.Sprintf("export: tail err=%v gaps=[%s]; no tail err=%v gaps=[%s]", resA.Err, ga, resB.Err, gb))
		bad := ""
		switch {
		case strict && fa != fb:
			bad = fmt.Sprintf("files differ:\ntail (%d):    %q\nno tail (-1): %q", tail, fa, fb)
		case !strict && !strings.HasPrefix(fb, fa) && !strings.HasPrefix(fa, fb):
			bad = fmt.Sprintf("files diverge:\ntail (%d):    %q\nno tail (-1): %q", tail, fa, fb)
		case strict && ga != gb:
			bad = fmt.Sprintf("gaps differ: tail (%d) [%s], no tail [%s]", tail, ga, gb)
		case strict && (resA.Err == nil) != (resB.Err == nil):
			bad = fmt.Sprintf("errors differ: tail (%d) %v, no tail %v", tail, resA.Err, resB.Err)
		}
		if bad != "" {
			return fmt.Sprintf("step %d, %s\n%+v, tail %d\n%s", step, bad, cfg, tail, strings.Join(log, "\n"))
		}
		return ""
	}
	steps := 12 + rng.Intn(16)
	for step := range steps {
		switch k := rng.Intn(20); {
		case k < 12:
			if running {
				appendEntries()
			}
		case k == 12:
			srv.Rotate("default", "p0", "c")
			log = append(log, "rotate")
		case k == 13:
			gen.mu.Lock()
			gen.clk = gen.clk.Add(time.Duration(rng.Int63n(int64(time.Second))))
			gen.mu.Unlock()
			srv.Restart("default", "p0", "c")
			running = true
			log = append(log, "restart")
		case k == 14 && running:
			gen.mu.Lock()
			gen.clk = gen.clk.Add(time.Duration(rng.Int63n(int64(time.Second))))
			gen.mu.Unlock()
			srv.Terminate("default", "p0", "c", 0)
			running = false
			log = append(log, "terminate")
		}
		if rng.Intn(3) == 0 {
			continue
		}
		cutMu.Lock()
		cutting = cfg.cuts
		cutMu.Unlock()
		if msg := compare(step, !cfg.cuts); msg != "" {
			return msg
		}
		if cfg.cuts {
			// Once no longer cut, the tail's directory catches up before anything changes.
			cutMu.Lock()
			cutting = false
			cutMu.Unlock()
			res := tailRun(t, srv, dirA, optsA)
			log = append(log, fmt.Sprintf("export (tail only, not cut): err=%v gaps=[%s]", res.Err, gapSpans(res)))
			if fa, fb := readLog(t, dirA, "p0", "c"), readLog(t, dirB, "p0", "c"); fa != fb {
				return fmt.Sprintf("step %d, files differ after a run not cut:\ntail (%d):    %q\nno tail (-1): %q\n%+v\n%s", step, tail, fa, fb, cfg, strings.Join(log, "\n"))
			}
		}
	}
	if running && rng.Intn(2) == 0 {
		srv.Terminate("default", "p0", "c", 0)
		log = append(log, "terminate")
	}
	cutMu.Lock()
	cutting = false
	cutMu.Unlock()
	log = append(log, "(no more cuts)")
	for i := range 3 {
		if msg := compare(steps+i, i == 2 || !cfg.cuts); msg != "" {
			return msg
		}
	}
	return ""
}
