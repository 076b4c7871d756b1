package export

// More configurations for the randomized comparison of resumes with a tail against resumes
// without one (see break_tail_random_test.go): timestamps that go back by up to most of a second
// (stdout and stderr), a tail length drawn anew for every run (so that a run whose tail missed
// follows one whose tail was kept), the tool's own estimate, and bursts bigger than the tail.

import (
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

type tail2Cfg struct {
	back      time.Duration // how far back stderr (or stdout) may be stamped
	vary      bool          // a new tail length for every run
	estimate  bool          // tail 0: the tool's estimate
	bursts    bool          // appends of many entries at once
	identical bool
	stamps    bool
	// wholeBack: only whole lines (no partial entry open or made) are stamped back, so that
	// the kubelet's per-entry since filter and tailFilter's per-line one agree.
	wholeBack bool
}

func TestBreakTail2RandomAgainstNoTail(t *testing.T) {
	// Partial entries with timestamps going back across a second (900ms) are left out: a tail
	// kept then stores a window line with a stderr entry glued on that a stream from since serves
	// without it, and a later run reading from since reports a rotation where nothing was lost
	// (README, what the API cannot give).
	cfgs := map[string]tail2Cfg{
		"back 3ms vary":                          {back: 3 * time.Millisecond, vary: true},
		"estimate bursts identical":              {estimate: true, bursts: true, identical: true},
		"vary identical stamps":                  {vary: true, identical: true, stamps: true, back: 2 * time.Millisecond},
		"whole back 900ms vary bursts identical": {back: 900 * time.Millisecond, vary: true, bursts: true, identical: true, wholeBack: true},
		"whole back 900ms estimate bursts":       {back: 900 * time.Millisecond, estimate: true, bursts: true, wholeBack: true},
	}
	runTailConfigs(t, cfgs, func(cfg tail2Cfg, seed int64) string { return tail2Sequence(t, cfg, seed) })
}

func tail2Sequence(t *testing.T, cfg tail2Cfg, seed int64) string {
	rng := rand.New(rand.NewSource(seed))
	gen := &randEntries{rng: rng, clk: time.Now().Add(-2 * time.Minute).Truncate(time.Second), identical: cfg.identical}
	srv := logserver.New(t)
	defer srv.Close()
	srv.NodeClock = func() time.Time { return time.Now().Add(-30 * time.Minute) }
	srv.AddPod("default", "p0", "c")
	tails := []int64{1, 2, 3, 4, 5, 6, 8, 12, 20}
	pick := func() int64 {
		if cfg.estimate {
			return 0
		}
		return tails[rng.Intn(len(tails))]
	}
	tail := pick()
	dirA, dirB := t.TempDir(), t.TempDir()
	var log []string
	truth := map[string]int{} // lines a full read serves, counted (an upper bound across rotations)
	pending := ""
	flush := func() {
		if pending != "" {
			truth[pending]++
			pending = ""
		}
	}
	running := true
	appendEntries := func() {
		n := 1 + rng.Intn(4)
		if cfg.bursts && rng.Intn(4) == 0 {
			n = 10 + rng.Intn(60)
		}
		es := gen.entries(n, func(e *logserver.Entry, drawn []logserver.Entry) {
			open := pending != ""
			if len(drawn) > 0 {
				open = drawn[len(drawn)-1].Partial
			}
			if cfg.back > 0 && rng.Intn(3) == 0 && (!cfg.wholeBack || pending == "" && !e.Partial && !open) {
				e.Time = gen.clk.Add(-time.Duration(rng.Int63n(int64(cfg.back))))
			}
		})
		srv.Append("default", "p0", "c", es...)
		for _, e := range es {
			pending += e.Text
			if !e.Partial {
				truth[pending]++
				pending = ""
			}
		}
		log = append(log, appendedLine(es))
	}
	compare := func(step int) string {
		if cfg.vary {
			tail = pick()
		}
		resA := tailRun(t, srv, dirA, Options{ResumeTail: tail, Timestamps: cfg.stamps})
		resB := tailRun(t, srv, dirB, Options{ResumeTail: -1, Timestamps: cfg.stamps})
		fa, fb := readLog(t, dirA, "p0", "c"), readLog(t, dirB, "p0", "c")
		ga, gb := gapSpans(resA), gapSpans(resB)
		log = append(log, fmt.Sprintf("export: tail %d err=%v gaps=[%s]; no tail err=%v gaps=[%s]", tail, resA.Err, ga, resB.Err, gb))
		bad := ""
		if os.Getenv("BREAK_TAIL2_STRICT") != "" {
			switch {
			case fa != fb:
				bad = fmt.Sprintf("files differ:\ntail:         %q\nno tail (-1): %q", fa, fb)
			case ga != gb:
				bad = fmt.Sprintf("gaps differ: tail [%s], no tail [%s]", ga, gb)
			case (resA.Err == nil) != (resB.Err == nil):
				bad = fmt.Sprintf("errors differ: tail %v, no tail %v", resA.Err, resB.Err)
			}
		} else {
			// Only where the tail does worse: a gap or an error the other has not, a line the
			// other stored that it did not, or more copies of a line than a full read serves.
			count := func(f string) map[string]int {
				m := map[string]int{}
				for _, x := range strings.SplitAfter(f, "\n") {
					if x != "" {
						m[strings.TrimSuffix(x, "\n")]++
					}
				}
				return m
			}
			ca, cb := count(fa), count(fb)
			for x, n := range cb {
				if ca[x] < n && bad == "" && len(resA.Gaps) == 0 && resA.Err == nil {
					bad = fmt.Sprintf("line %q stored %d times without a tail, %d with one, no gap:\ntail:         %q\nno tail (-1): %q", x, n, ca[x], fa, fb)
				}
			}
			for x, n := range ca {
				if n > truth[x] && n > cb[x] && bad == "" {
					bad = fmt.Sprintf("line %q stored %d times with a tail, served %d times:\ntail:         %q\nno tail (-1): %q", x, n, truth[x], fa, fb)
				}
			}
			if bad == "" && ga != "" && gb == "" {
				bad = fmt.Sprintf("gaps with a tail only: [%s]", ga)
			}
			if bad == "" && resA.Err != nil && resB.Err == nil {
				bad = fmt.Sprintf("error with a tail only: %v", resA.Err)
			}
		}
		if bad != "" {
			return fmt.Sprintf("step %d, %s\n%+v\n%s", step, bad, cfg, strings.Join(log, "\n"))
		}
		return ""
	}
	steps := 12 + rng.Intn(16)
	for step := range steps {
		switch k := rng.Intn(20); {
		case k < 13:
			if running {
				appendEntries()
			}
		case k == 13:
			srv.Rotate("default", "p0", "c")
			flush()
			log = append(log, "rotate")
		case k == 14:
			gen.clk = gen.clk.Add(time.Duration(rng.Int63n(int64(time.Second))))
			srv.Restart("default", "p0", "c")
			flush()
			running = true
			log = append(log, "restart")
		case k == 15 && running:
			gen.clk = gen.clk.Add(time.Duration(rng.Int63n(int64(time.Second))))
			srv.Terminate("default", "p0", "c", 0)
			flush()
			running = false
			log = append(log, "terminate")
		}
		if rng.Intn(3) == 0 {
			continue
		}
		if msg := compare(step); msg != "" {
			return msg
		}
	}
	for i := range 2 {
		if msg := compare(steps + i); msg != "" {
			return msg
		}
	}
	return ""
}
