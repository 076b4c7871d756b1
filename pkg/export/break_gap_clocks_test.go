package export

// A helper's second attempt (nineteenth session) to break the gaps' bounds and the stale end's
// confirmation: a random merge-level test (cuts, rotations, restarts, timestamps going back within
// a second), and the two cases it found, where a clock stepped back or two nodes' clocks differ
// and a gap clamped to end where it started covered none of the lines it lost (gapTo).

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// storedGapsOf are the gaps recorded in dir.
func storedGapsOf(t *testing.T, dir string) []Gap {
	t.Helper()
	var out []Gap
	for _, l := range storedGaps(t, dir) {
		var g Gap
		if err := json.Unmarshal([]byte(l), &g); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

// covered tells whether a line at at lies inside one of gaps.
func covered(at time.Time, gaps []Gap) bool {
	for _, g := range gaps {
		if (g.From.IsZero() || !at.Before(g.From)) && (g.To == nil || !at.After(*g.To)) {
			return true
		}
	}
	return false
}

type mergeRandomLine struct {
	text string
	at   time.Time
	inst int
}

// mergeRandom: random sequences of appends (timestamps going back within the second, never before
// an earlier action's lines, as the model does), rotations, restarts, terminations and exports
// whose log responses are cut short at distinct byte counts within one export. Invariants: each
// stored line was logged, at most once, in log order; every logged line not stored lies in a
// recorded gap; no recorded gap ends before it starts.
func mergeRandom(t *testing.T, seed uint64, steps int) (trace []string, fail string) {
	rng := rand.New(rand.NewPCG(seed, 0xb19))
	srv, clock := clockedServer(t)
	dir := t.TempDir()
	var logged []mergeRandomLine
	running := true
	curLines, inst := 0, 0
	// watched: lines from this index on were logged after something was stored (a loss before is
	// not the tool's to know of).
	watched := -1
	n := 0
	begin := *clock
	appendLines := func(k int) {
		var es []logserver.Entry
		begin = *clock
		for range k {
			*clock = clock.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
			at := *clock
			if rng.IntN(3) == 0 && clock.After(begin) {
				from := clock.Truncate(time.Second)
				if !from.After(begin) && os.Getenv("B19_WIDE") == "" {
					from = begin.Add(time.Nanosecond)
				}
				if span := clock.Sub(from); span > 0 {
					at = from.Add(time.Duration(rng.Int64N(int64(span))))
				}
			}
			n++
			text := "L" + strconv.Itoa(n)
			stream := "stdout"
			if rng.IntN(2) == 0 {
				stream = "stderr"
			}
			if os.Getenv("B19_PARTIAL") != "" && rng.IntN(4) == 0 {
				pieces := 2 + rng.IntN(2)
				full := ""
				for j := range pieces {
					piece := fmt.Sprintf("%s.p%d-%s", text, j, strings.Repeat("x", rng.IntN(40)))
					full += piece
					pt := at.Add(time.Duration(j*20) * time.Millisecond)
					if pt.After(*clock) {
						*clock = pt
					}
					es = append(es, logserver.Entry{Time: pt, Stream: stream, Text: piece, Partial: j < pieces-1})
				}
				text = full
			} else {
				es = append(es, logserver.Entry{Time: at, Stream: stream, Text: text})
			}
			logged = append(logged, mergeRandomLine{text, at, inst})
			curLines++
		}
		*clock = clock.Add(time.Millisecond)
		srv.Append("default", "p0", "c", es...)
		trace = append(trace, fmt.Sprintf("append %d", k))
	}
	export := func(cutting bool) (Result, int) {
		base := rng.IntN(150)
		step := 1 + rng.IntN(60)
		pcut := rng.IntN(3)
		var cuts []string
		var hook func(int)
		if cutting && os.Getenv("B19_HOOK") != "" && rng.IntN(2) == 0 {
			at, what := 1+rng.IntN(4), rng.IntN(4)
			hook = func(k int) {
				if k != at {
					return
				}
				switch what {
				case 0:
					if running {
						appendLines(1 + rng.IntN(2))
					}
				case 1:
					if running {
						srv.Rotate("default", "p0", "c")
						curLines = 0
						trace = append(trace, "  (in export) rotate")
					}
				case 2:
					*clock = clock.Add(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
					srv.Restart("default", "p0", "c")
					running, curLines = true, 0
					inst++
					trace = append(trace, "  (in export) restart")
				case 3:
					if running {
						*clock = clock.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
						srv.Terminate("default", "p0", "c", 0)
						running = false
						trace = append(trace, "  (in export) terminate")
					}
				}
			}
		}
		res, reqs := exportShortAt(t, srv, dir, Options{}, hook, func(k int) int {
			if !cutting || rng.IntN(3) >= pcut {
				cuts = append(cuts, "-")
				return -1
			}
			c := base + k*step
			cuts = append(cuts, strconv.Itoa(c))
			return c
		})
		trace = append(trace, fmt.Sprintf("export cuts=%v lines=%d gaps=%d err=%v complete=%v confirm=%v", cuts, res.Lines, len(res.Gaps), res.Err, res.Complete, res.Confirm))
		return res, reqs
	}
	check := func(final bool) string {
		got := readLog(t, dir, "p0", "c")
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if got == "" {
			lines = nil
		}
		idx := map[string]int{}
		for i, l := range logged {
			idx[l.text] = i
		}
		seen := map[string]bool{}
		last := -1
		for _, l := range lines {
			i, ok := idx[l]
			if !ok {
				return fmt.Sprintf("stored line %q never logged; file %q", l, got)
			}
			if seen[l] {
				return fmt.Sprintf("line %q stored twice; file %q", l, got)
			}
			seen[l] = true
			if i < last {
				return fmt.Sprintf("line %q out of order; file %q", l, got)
			}
			last = i
		}
		gaps := storedGapsOf(t, dir)
		for _, g := range gaps {
			if g.To != nil && !g.From.IsZero() && g.To.Before(g.From) {
				return fmt.Sprintf("gap %+v ends before it starts", g)
			}
		}
		securedBefore := map[int]bool{}
		for i, l := range logged {
			required := final && i >= watched && securedBefore[l.inst]
			if seen[l.text] {
				securedBefore[l.inst] = true
			}
			if required && !seen[l.text] && !covered(l.at, gaps) {
				return fmt.Sprintf("line %s at %s neither stored nor in a gap; file %q; gaps %v", l.text, l.at.Format(time.RFC3339Nano), got, gapsString(gaps))
			}
		}
		return ""
	}
	for range steps {
		switch r := rng.IntN(20); {
		case r < 7:
			if running {
				appendLines(1 + rng.IntN(3))
			}
		case r < 9:
			if running {
				srv.Rotate("default", "p0", "c")
				curLines = 0
				trace = append(trace, "rotate")
			}
		case r < 10:
			if running {
				*clock = clock.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
				srv.Terminate("default", "p0", "c", 0)
				running = false
				trace = append(trace, "terminate")
			}
		case r < 11:
			*clock = clock.Add(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
			srv.Restart("default", "p0", "c")
			running, curLines = true, 0
			inst++
			trace = append(trace, "restart")
		case r < 12:
			*clock = clock.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
			trace = append(trace, "tick")
		case r < 14 && os.Getenv("B19_STALE") != "":
			// Lines no newer than the newest logged one, within its second (stdout read late),
			// maybe with the very same timestamp, maybe after a rotation, maybe then terminated.
			if !running || len(logged) == 0 {
				break
			}
			if rng.IntN(2) == 0 {
				srv.Rotate("default", "p0", "c")
				curLines = 0
				trace = append(trace, "rotate")
			}
			var newest time.Time
			for _, l := range logged {
				if l.inst == inst && l.at.After(newest) {
					newest = l.at
				}
			}
			if newest.IsZero() {
				break
			}
			var es []logserver.Entry
			k := 1 + rng.IntN(3)
			for range k {
				at := newest
				if rng.IntN(2) == 0 {
					if span := newest.Sub(newest.Truncate(time.Second)); span > 0 {
						at = newest.Truncate(time.Second).Add(time.Duration(rng.Int64N(int64(span))))
					}
				}
				n++
				text := "S" + strconv.Itoa(n)
				es = append(es, logserver.Entry{Time: at, Stream: "stderr", Text: text})
				logged = append(logged, mergeRandomLine{text, at, inst})
				curLines++
			}
			srv.Append("default", "p0", "c", es...)
			trace = append(trace, fmt.Sprintf("stale-append %d", k))
			if rng.IntN(2) == 0 {
				*clock = clock.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
				srv.Terminate("default", "p0", "c", 0)
				running = false
				trace = append(trace, "terminate")
			}
		default:
			export(true)
			if watched < 0 && readLog(t, dir, "p0", "c") != "" {
				watched = len(logged)
			}
			if f := check(false); f != "" {
				return trace, f
			}
		}
	}
	if running {
		*clock = clock.Add(time.Second)
		srv.Terminate("default", "p0", "c", 0)
		trace = append(trace, "terminate")
	}
	*clock = clock.Add(2 * time.Second)
	if watched < 0 {
		watched = len(logged)
	}
	for range 3 {
		export(false)
		if f := check(true); f != "" {
			return trace, f
		}
	}
	if _, reqs := export(false); reqs != 0 && curLines > 0 {
		cp := storedCheckpointOf(t, dir)
		return trace, fmt.Sprintf("the last run still asked %d times (cp %+v)", reqs, cp)
	}
	return trace, check(true)
}

func gapsString(gs []Gap) string {
	var s []string
	for _, g := range gs {
		to := "now"
		if g.To != nil {
			to = g.To.Format(time.RFC3339Nano)
		}
		s = append(s, fmt.Sprintf("[%s..%s %.40s]", g.From.Format(time.RFC3339Nano), to, g.Reason))
	}
	return strings.Join(s, " ")
}

func TestBreakMergeRandom(t *testing.T) {
	seeds := uint64(envIntDefault("MERGE_RANDOM_SEEDS", 200))
	start := uint64(envIntDefault("MERGE_RANDOM_START", 0))
	fails := 0
	for seed := start; seed < start+seeds; seed++ {
		var trace []string
		var fail string
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			trace, fail = mergeRandom(t, seed, mergeRandomSteps())
			if fail != "" {
				t.Errorf("seed %d: %s\ntrace:\n  %s", seed, fail, strings.Join(trace, "\n  "))
			}
		})
		if fail != "" {
			if fails++; fails >= 3 {
				return
			}
		}
	}
}

func mergeRandomSteps() int { return envIntDefault("MERGE_RANDOM_STEPS", 30) }

// The pod is replaced (a StatefulSet's) after the last export, and the new pod runs on a node
// whose clock is 3s behind the old one's (the code allows nodeClockSkew, a minute). The old pod
// logged a-2 after the checkpoint; it is lost. The run reports "instance no longer served" from
// the second of the newest stored line, closed by the new pod's first line, which is older by
// the new node's clock: gapTo clamps To to From, and a-2 lies outside the gap.
func TestBreakClocksReplacedPodSkewedNodeGap(t *testing.T) {
	srv, clock := clockedServer(t)
	x := clock.Truncate(time.Second)
	srv.Append("default", "p0", "c", logserver.Entry{Time: x.Add(100 * time.Millisecond), Text: "a-1"})
	*clock = x.Add(200 * time.Millisecond)
	dir := firstShortRun(t, srv, 1)
	a2 := x.Add(1500 * time.Millisecond)
	srv.Append("default", "p0", "c", logserver.Entry{Time: a2, Text: "a-2"})
	// Replaced; the new pod's node is 3s behind.
	*clock = x.Add(-1 * time.Second)
	srv.Replace("default", "p0")
	srv.Append("default", "p0", "c", logserver.Entry{Time: x.Add(-900 * time.Millisecond), Text: "b-1"})
	res, _ := exportShortAt(t, srv, dir, Options{}, nil, nil)
	gaps := storedGapsOf(t, dir)
	t.Logf("run 2: lines %d, err %v, gaps %v; file %q", res.Lines, res.Err, gapsString(gaps), readLog(t, dir, "p0", "c"))
	if !covered(a2, gaps) {
		t.Fatalf("a-2 at %s (old pod, after the checkpoint) lost and in no gap: %s", a2.Format(time.RFC3339Nano), gapsString(gaps))
	}
}

// The proof gap (0c8133a clamps its To to its From): A finished and is stored to its end
// (confirmed); the node's clock then steps back 5s; B starts and logs b-1; the pods are listed
// (A previous, B current); B restarts into C just before the log request, and C logs c-1; the
// pod is deleted when the export asks for its status to prove the stream. The export reports
// "if it restarted just before, what instance B logged before this is lost" from the second of
// A's newest line to, clamped, the same second: b-1, which B logged and which is lost, is not in it.
func TestBreakClocksProveGapClampedAfterClockStep(t *testing.T) {
	srv, clock := clockedServer(t)
	x := clock.Truncate(time.Second)
	srv.Append("default", "p0", "c",
		logserver.Entry{Time: x.Add(100 * time.Millisecond), Text: "a-1"},
		logserver.Entry{Time: x.Add(10 * time.Second), Text: "a-2"})
	*clock = x.Add(10*time.Second + 500*time.Millisecond)
	srv.Terminate("default", "p0", "c", 0)
	dir := t.TempDir()
	for run := 1; run <= 2; run++ {
		if res, _ := exportShortAt(t, srv, dir, Options{}, nil, nil); res.Err != nil {
			t.Fatalf("run %d: %v", run, res.Err)
		}
	}
	if cp := storedCheckpointOf(t, dir); cp == nil || !cp.Confirmed {
		t.Fatalf("checkpoint %+v: want A confirmed", cp)
	}
	*clock = x.Add(5 * time.Second)
	srv.Restart("default", "p0", "c")
	b1 := x.Add(5500 * time.Millisecond)
	srv.Append("default", "p0", "c", logserver.Entry{Time: b1, Text: "b-1"})
	tgt := breakTarget(t, srv, "p0", "c")
	*clock = x.Add(6 * time.Second)
	srv.Restart("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: x.Add(6200 * time.Millisecond), Text: "c-1"})
	res := exportDeletingPod(t, srv, dir, tgt)
	gaps := storedGapsOf(t, dir)
	t.Logf("err %v, lines %d, gaps %v; file %q", res.Err, res.Lines, gapsString(gaps), readLog(t, dir, "p0", "c"))
	if !strings.Contains(readLog(t, dir, "p0", "c"), "b-1") && !covered(b1, gaps) {
		t.Fatalf("b-1 at %s lost and in no gap: %s", b1.Format(time.RFC3339Nano), gapsString(gaps))
	}
}

// (4) errLookAgain for a stale end and for a held line in one stream: after the rotation, look
// 1 is cut after the stale c-3 (a stale end), look 2 inside the new d-4 (held, its start
// written), look 3 after c-3 again, the same bytes as look 1. d-4 must be stored once by the
// runs after, and the end not confirmed by looks of which one served more.
func TestBreakClocksStaleThenHeldThenStale(t *testing.T) {
	srv, dir, _, d4 := review19Rotated(t, 0)
	line := len("2006-01-02T15:04:05.000000000Z ") + len("c-3\n")
	res, _ := exportShortAt(t, srv, dir, Options{}, nil, cutLooks(map[int]int{2: line, 3: line + len("2006-01-02T15:04:05.000000000Z ") + 2, 4: line}))
	cp := storedCheckpointOf(t, dir)
	t.Logf("run 2: lines %d gaps %v err %v; Complete=%q Confirmed=%v After=%v", res.Lines, res.Gaps, res.Err, cp.Complete, cp.Confirmed, cp.After)
	if cp.Confirmed && !strings.Contains(readLog(t, dir, "p0", "c"), "d-4") {
		t.Logf("NOTE: confirmed without d-4 (covered by the open gap: %v)", covered(d4, storedGapsOf(t, dir)))
	}
	for i := 0; i < 3; i++ {
		res, n := exportShortAt(t, srv, dir, Options{}, nil, nil)
		t.Logf("run %d: %d requests, lines %d, gaps %v, err %v", i+3, n, res.Lines, res.Gaps, res.Err)
	}
	if got := readLog(t, dir, "p0", "c"); got != "a-1\nb-2\nd-4\n" {
		t.Fatalf("file %q", got)
	}
}
