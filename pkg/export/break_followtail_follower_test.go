package export_test

// 391b6a4 through the real follower (pkg/follow, wired as pkg/cmd wires it): several containers
// take turns on MaxStreams=1 streams (ShareAfter) and reconnect every few tens of milliseconds,
// each turn and reconnect asking for small tails (ResumeTail), while their logs grow with
// partial entries, stderr stamped back, identical lines, rotations and restarts (each at a moment
// the follower is caught up, so nothing is lost). Every file must be exactly its log.

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/follow"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

type ftfModel struct {
	want []string
	line string
	open bool
}

func (m *ftfModel) add(es []logserver.Entry) {
	for _, e := range es {
		m.open = true
		if m.line += e.Text; !e.Partial {
			m.want, m.line, m.open = append(m.want, m.line), "", false
		}
	}
}

func (m *ftfModel) stop() {
	if m.open {
		m.want, m.line, m.open = append(m.want, m.line), "", false
	}
}

func (m *ftfModel) file() string {
	if len(m.want) == 0 {
		return ""
	}
	return strings.Join(m.want, "\n") + "\n"
}

func ftfEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func TestBreakFollowTailFollowerTurns(t *testing.T) {
	seqs := ftfEnv("BREAK_FTF_SEQS", 4)
	seed0 := int64(ftfEnv("BREAK_FTF_SEED", 1))
	for i := range seqs {
		seed := seed0 + int64(i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { ftfSequence(t, seed) })
	}
}

func ftfSequence(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	tail := []int64{1, 2, 3, 4, 5, 8, 12, 20, 0}[rng.Intn(9)]
	if v := ftfEnv("BREAK_FTF_TAIL", -100); v != -100 {
		tail = int64(v)
	}
	pods := 2 + rng.Intn(3)
	srv := logserver.New(t)
	defer srv.Close()
	var mu sync.Mutex
	clk := time.Now().Add(-time.Duration(rng.Intn(600)) * time.Second).Truncate(time.Second)
	srv.NodeClock = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clk
	}
	models := make([]*ftfModel, pods)
	last := make([]time.Time, pods)
	for p := range pods {
		srv.AddPod("default", fmt.Sprint("p", p), "c")
		models[p] = &ftfModel{}
	}
	dir := t.TempDir()
	d, err := store.Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	client := srv.Client()
	opts := export.Options{ResumeTail: tail}
	once := &export.Exporter{Client: client, Dest: d, Options: opts}
	opts.Follow, opts.CommitInterval = true, time.Duration(1+rng.Intn(30))*time.Millisecond
	streaming := &export.Exporter{Client: client, Dest: d, Options: opts}
	var gapMu sync.Mutex
	var gaps []string
	f := &follow.Follower{Client: client, Scope: podselect.Scope{Namespace: "default"},
		Export: func(ctx context.Context, tg target.Target, follow bool) export.Result {
			if follow {
				return streaming.Export(ctx, tg)
			}
			return once.Export(ctx, tg)
		},
		Gone: once.Gone, RecordGaps: once.RecordGaps, Resync: 10 * time.Minute,
		MaxStreams: 1, ShareAfter: time.Duration(10+rng.Intn(40)) * time.Millisecond,
		Reconnect:    time.Duration(20+rng.Intn(100)) * time.Millisecond,
		Backoff:      wait.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 1 << 30},
		EndedBackoff: wait.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 1 << 30},
		Report: func(r export.Result) {
			gapMu.Lock()
			defer gapMu.Unlock()
			for _, g := range r.Gaps {
				gaps = append(gaps, r.Pod+": "+g.String())
			}
			if r.Err != nil {
				gaps = append(gaps, r.Pod+": error: "+r.Err.Error())
			}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, _, err := f.Run(ctx); done <- err }()
	defer func() {
		cancel()
		<-done
		d.Close()
	}()
	var log []string
	texts := []string{"a", "b", "ab", ""}
	draw := func(p, n int) []logserver.Entry {
		mu.Lock()
		defer mu.Unlock()
		var es []logserver.Entry
		for range n {
			e := logserver.Entry{Stream: "stdout", Text: texts[rng.Intn(len(texts))]}
			if rng.Intn(10) < 3 {
				e.Stream = "stderr"
			}
			if e.Text != "" && rng.Intn(4) == 0 {
				e.Partial = true
			}
			if !last[p].IsZero() && rng.Intn(3) == 0 {
				e.Time = last[p] // identical timestamps
			} else {
				steps := []time.Duration{1, time.Microsecond, time.Millisecond, 300 * time.Millisecond, 1100 * time.Millisecond}
				clk = clk.Add(time.Duration(1 + rng.Int63n(int64(steps[rng.Intn(len(steps))]))))
				e.Time = clk
				if e.Stream == "stderr" && rng.Intn(3) == 0 {
					e.Time = clk.Add(-time.Duration(rng.Int63n(int64(3 * time.Millisecond))))
					if e.Time.Before(clk.Truncate(time.Second)) {
						e.Time = clk.Truncate(time.Second)
					}
				}
			}
			if e.Time.Before(last[p]) && !last[p].IsZero() && e.Time.Truncate(time.Second).Before(last[p].Truncate(time.Second)) {
				e.Time = last[p]
			}
			last[p] = e.Time
			es = append(es, e)
		}
		return es
	}
	jump := func(p int) {
		mu.Lock()
		clk = clk.Add(2 * time.Second)
		last[p] = time.Time{}
		mu.Unlock()
	}
	read := func(p int) string {
		b, err := os.ReadFile(filepath.Join(dir, "default", fmt.Sprint("p", p), "c.log"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		s := string(b)
		return s[:strings.LastIndexByte(s, '\n')+1]
	}
	caught := func(p int, step int) bool {
		for dl := time.Now().Add(10 * time.Second); time.Now().Before(dl); time.Sleep(5 * time.Millisecond) {
			if read(p) == models[p].file() {
				return true
			}
		}
		gapMu.Lock()
		defer gapMu.Unlock()
		tails, followed, retried := srv.TailRequests()
		t.Errorf("seed %d step %d tail %d: p%d's file never became its log:\ngot  %q\nwant %q\nreports %q\ntails %d followed %d retried %d\n%s",
			seed, step, tail, p, read(p), models[p].file(), gaps, tails, followed, retried, strings.Join(log, "\n"))
		return false
	}
	steps := 30 + rng.Intn(30)
	for step := range steps {
		p := rng.Intn(pods)
		name := fmt.Sprint("p", p)
		switch k := rng.Intn(20); {
		case k < 15:
			es := draw(p, 1+rng.Intn(5))
			srv.Append("default", name, "c", es...)
			models[p].add(es)
			log = append(log, fmt.Sprintf("%s: %d entries", name, len(es)))
		case k < 17 && !models[p].open:
			if !caught(p, step) {
				return
			}
			srv.Rotate("default", name, "c")
			jump(p)
			log = append(log, name+": rotate")
		case k < 19 && !models[p].open:
			// A restart once the follower caught up: its stream of the instance ends, and the
			// next instance is followed.
			if !caught(p, step) {
				return
			}
			jump(p)
			srv.Restart("default", name, "c")
			models[p].stop()
			log = append(log, name+": restart")
		default:
			time.Sleep(time.Duration(rng.Intn(80)) * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.Intn(10)) * time.Millisecond)
	}
	// Lines still open are not served to a follower: finish them.
	for p := range pods {
		if models[p].open {
			es := []logserver.Entry{{Time: last[p], Text: "end"}}
			srv.Append("default", fmt.Sprint("p", p), "c", es...)
			models[p].add(es)
		}
		if !caught(p, steps) {
			return
		}
	}
	tails, followed, retried := srv.TailRequests()
	t.Logf("seed %d tail %d pods %d: tails %d followed %d retried %d; reports %d", seed, tail, pods, tails, followed, retried, len(gaps))
}
