package export

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// An incremental run asks for the log's tail (tailLines) and must store exactly what a stream
// from since alone would have given, wherever the tail begins: before the stored window, at its
// first line, inside it, inside a long line split across since, among the new lines, or in a
// rotated file. The stored history makes the estimate (see tailLines) the window and the margin
// alone, so a probe run learns it and each case puts the tail's start where it wants it.
func TestTailLinesStartAnywhere(t *testing.T) {
	const window = 40 // stored lines in the newest stored second
	type want struct {
		requests []bool // whether each log request asked for a tail
		gap      bool
	}
	for _, tc := range []struct {
		name string
		// fresh is how many entries to append, given n (the tail's length) and the window.
		fresh  func(n int) int
		rotate bool
		want   want
	}{
		{"few new lines", func(int) int { return 10 }, false, want{requests: []bool{true}}},
		{"nothing new", func(int) int { return 0 }, false, want{requests: []bool{true}}},
		{"tail begins at an old line", func(n int) int { return n - window - 4 }, false, want{requests: []bool{true}}},
		// Within a second of since: where the tail begins is not known.
		{"tail begins at the long line's first entry", func(n int) int { return n - window - 3 }, false, want{requests: []bool{true, false}}},
		{"tail begins at its second entry", func(n int) int { return n - window - 2 }, false, want{requests: []bool{true, false}}},
		{"tail begins at its last entry, after since", func(n int) int { return n - window - 1 }, false, want{requests: []bool{true, false}}},
		{"tail begins at the window's first line", func(n int) int { return n - window }, false, want{requests: []bool{true, false}}},
		{"tail begins at the window's second line", func(n int) int { return n - window + 1 }, false, want{requests: []bool{true, false}}},
		{"tail begins at the window's last line", func(n int) int { return n - 1 }, false, want{requests: []bool{true, false}}},
		{"tail begins among the new lines", func(n int) int { return n + 7 }, false, want{requests: []bool{true, false}}},
		{"rotated", func(int) int { return 10 }, true, want{requests: []bool{true, false, false}, gap: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := logserver.New(t)
			defer srv.Close()
			srv.AddPod("default", "p0", "c")
			now := time.Now()
			sec := now.Add(-time.Minute).Truncate(time.Second)
			var want []string
			add := func(entries ...logserver.Entry) {
				srv.Append("default", "p0", "c", entries...)
				line := ""
				for _, e := range entries {
					if line += e.Text; !e.Partial {
						want, line = append(want, line), ""
					}
				}
			}
			// A long history at a low mean rate, so that the estimate is the window plus the
			// margin, and then a line split into three entries across since.
			longSlowHistory(add, now)
			for i := range 2 * tailMargin {
				add(logserver.Entry{Time: sec.Add(-10*time.Second + time.Duration(i)*time.Millisecond), Text: fmt.Sprintf("old-%d", i)})
			}
			add(logserver.Entry{Time: sec.Add(-300 * time.Millisecond), Partial: true, Text: "aaa"},
				logserver.Entry{Time: sec.Add(-200 * time.Millisecond), Partial: true, Text: "bbb"},
				logserver.Entry{Time: sec.Add(100 * time.Millisecond), Text: "ccc"})
			// The window: the same text, again and again.
			for i := range window {
				add(logserver.Entry{Time: sec.Add(200*time.Millisecond + time.Duration(i)*time.Microsecond), Text: "x"})
			}
			requests := tailRequests(srv)
			dir := t.TempDir()
			export := func() Result {
				e, d := breakExporter(t, srv, dir, Options{}, nil)
				res := e.Export(context.Background(), breakTarget(t, srv, "p0", "c"))
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				if res.Err != nil {
					t.Fatalf("export: %v", res.Err)
				}
				return res
			}
			export()
			if r := requests(); len(r) != 1 || r[0] != 0 {
				t.Fatalf("first run's requests asked for tails %v, want one without", r)
			}
			export() // a probe: learns the tail's length
			probe := requests()
			if len(probe) != 1 || probe[0] <= window {
				t.Fatalf("probe run's requests asked for tails %v, want one longer than the window", probe)
			}
			if tc.rotate {
				srv.Rotate("default", "p0", "c")
			}
			n := int(probe[0])
			for i := range tc.fresh(n) {
				add(logserver.Entry{Time: sec.Add(2*time.Second + time.Duration(i)*time.Microsecond), Text: fmt.Sprintf("new-%d", i)})
			}
			res := export()
			got := requests()
			var asked []bool
			for _, r := range got {
				asked = append(asked, r > 0)
			}
			if got[0] != probe[0] || fmt.Sprint(asked) != fmt.Sprint(tc.want.requests) {
				t.Errorf("requests asked for tails %v (probe %d), want tails as %v", got, probe[0], tc.want.requests)
			}
			if (len(res.Gaps) > 0) != tc.want.gap {
				t.Errorf("gaps %v, want a gap: %v", res.Gaps, tc.want.gap)
			}
			if file, w := readLog(t, dir, "p0", "c"), strings.Join(want, "\n")+"\n"; file != w {
				i := firstDiff(file, w)
				t.Errorf("file holds %d lines, want %d; first difference at byte %d: %q, want %q", strings.Count(file, "\n"), len(want), i, file[i:min(len(file), i+40)], w[i:min(len(w), i+40)])
			}
		})
	}
}

func TestTailLinesEstimate(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	since := now.Add(-5 * time.Minute)
	// steady: 100,000 lines over the last day, resumed 5 minutes after the newest.
	steady := func() store.Checkpoint {
		return store.Checkpoint{Instance: "i", Since: since, Skip: 3, First: 1, Hash: 2, Last: since.Add(500 * time.Millisecond),
			Begin: since.Add(-24 * time.Hour), Lines: 100_000, Size: 10 << 20}
	}
	running := &instance{id: "i", running: true}
	tests := []struct {
		name  string
		opts  Options
		cp    func(*store.Checkpoint)
		in    *instance
		since time.Time
		after *time.Time
		want  int64
	}{
		// 100,000/86,400 a second for 301 s, twice, plus the window and the margin.
		{name: "a steady logger", want: 3 + 696 + tailMargin},
		{name: "a stopped one: read to its end once", in: &instance{id: "i", finished: since.Add(59 * time.Second)}, want: 0},
		{name: "a previous one", in: &instance{id: "i", running: true, previous: true}, want: 0},
		{name: "a burst a day ago: a 32nd", cp: func(cp *store.Checkpoint) { cp.Begin = since.Add(-100 * time.Second) }, want: 100_000 / 32},
		{name: "a small log: the whole", cp: func(cp *store.Checkpoint) { cp.Lines, cp.Size = 60, 6<<10 }, want: 0},
		// 100 lines a second, resumed 5 minutes on: 60,000 new lines are likely, and a tail's
		// slack would cost more than finding since. A 32nd bets that the logger stopped.
		{name: "a fast logger resumed late: a 32nd", cp: func(cp *store.Checkpoint) { cp.Begin = since.Add(-1000 * time.Second) }, want: 100_000 / 32},
		{name: "a window longer than a 16th: the whole", cp: func(cp *store.Checkpoint) { cp.Skip = 100_000/16 - tailMargin + 1 }, want: 0},
		{name: "a window of a 16th", cp: func(cp *store.Checkpoint) { cp.Skip = 100_000/16 - tailMargin }, want: 100_000 / 16},
		// 1 GiB in 1,000 lines is at least 65,536 entries.
		{name: "long lines count as entries", cp: func(cp *store.Checkpoint) { cp.Lines, cp.Size = 1_000, 1<<30 }, want: 3 + 456 + tailMargin},
		{name: "no window", cp: func(cp *store.Checkpoint) { cp.Skip = 0 }, want: 0},
		{name: "no first line's hash (an older checkpoint)", cp: func(cp *store.Checkpoint) { cp.First = 0 }, want: 0},
		{name: "after a rotation", cp: func(cp *store.Checkpoint) { cp.After = true }, want: 0},
		{name: "only what is newer", after: &since, want: 0},
		{name: "another second", since: since.Add(-time.Second), want: 0},
		{name: "another instance", in: &instance{id: "j", running: true}, want: 0},
		// Reopened at every reconnect and turn: a tail as well.
		{name: "followed", opts: Options{Follow: true}, want: 3 + 696 + tailMargin},
		{name: "never", opts: Options{ResumeTail: -1}, want: 0},
		{name: "told", opts: Options{ResumeTail: 7}, want: 7},
		{name: "no begin (an older checkpoint)", cp: func(cp *store.Checkpoint) { cp.Begin = time.Time{} }, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := steady()
			if tt.cp != nil {
				tt.cp(&cp)
			}
			in, s := tt.in, tt.since
			if in == nil {
				in = running
			}
			if s.IsZero() {
				s = since
			}
			m := &merge{Exporter: &Exporter{Options: tt.opts}, cp: cp}
			if got := m.tailLines(in, s, tt.after, now); got != tt.want {
				t.Errorf("tailLines = %d, want %d", got, tt.want)
			}
		})
	}
}

// The rest of a long line begun before since, served from since without a timestamp after the
// window and longer than the read buffer: skipped, as a shorter one is, and the runs go on.
func TestLongRestOfLineBegunBeforeSinceSkipped(t *testing.T) {
	for _, tail := range []int64{-1, 8} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			srv := logserver.New(t)
			defer srv.Close()
			srv.AddPod("default", "p0", "c")
			sec := time.Now().Add(-time.Minute).Truncate(time.Second)
			for i := range 3 {
				srv.Append("default", "p0", "c", logserver.Entry{Time: sec.Add(time.Duration(i-10) * time.Second), Text: fmt.Sprint("old-", i)})
			}
			srv.Append("default", "p0", "c", logserver.Entry{Time: sec.Add(300 * time.Microsecond), Stream: "stderr", Text: "w"})
			dir := t.TempDir()
			opts := Options{ResumeTail: tail, BufferSize: 4 << 10}
			if res := tailRun(t, srv, dir, opts); res.Err != nil {
				t.Fatal(res.Err)
			}
			srv.Append("default", "p0", "c",
				logserver.Entry{Time: sec.Add(-200 * time.Microsecond), Partial: true, Text: "a"},
				logserver.Entry{Time: sec.Add(400 * time.Microsecond), Partial: true, Text: strings.Repeat("b", 40<<10)},
				logserver.Entry{Time: sec.Add(500 * time.Microsecond), Text: "c"},
				logserver.Entry{Time: sec.Add(2 * time.Second), Text: "next"})
			for run := range 2 {
				if res := tailRun(t, srv, dir, opts); res.Err != nil || len(res.Gaps) > 0 {
					t.Fatalf("run %d: err %v, gaps %v", run, res.Err, res.Gaps)
				}
			}
			if got, want := readLog(t, dir, "p0", "c"), "old-0\nold-1\nold-2\nw\nnext\n"; got != want {
				t.Errorf("file %q, want %q", got[:min(len(got), 200)], want)
			}
		})
	}
}

// A follower's stream is opened again at every reconnect interval and turn: each opening asks for
// the log's tail, not for the node to read the whole file to sinceTime, and the file gets every
// line once, those logged while no stream was open and those logged while it follows.
func TestFollowResumesFromTail(t *testing.T) {
	l := newTailLog(t)
	srv := l.srv
	now := time.Now()
	longSlowHistory(l.add, now)
	for i := range 500 {
		l.add(logserver.Entry{Time: now.Add(-time.Hour + time.Duration(i)*time.Second), Text: fmt.Sprintf("old-%d", i)})
	}
	requests := tailRequests(srv)
	dir := l.stored(t, Options{ResumeTail: -1})
	requests()
	at := now.Add(-30 * time.Minute)
	next := func(text string, n int) {
		for i := range n {
			at = at.Add(time.Millisecond)
			l.add(logserver.Entry{Time: at, Text: fmt.Sprintf("%s-%d", text, i)})
		}
	}
	for reconnect := range 3 {
		// Logged while no stream was open, the same text as before among them.
		next("gap", 5)
		next("old", 3)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan Result, 1)
		go func() {
			e, d := breakExporter(t, srv, dir, Options{Follow: true, CommitInterval: 5 * time.Millisecond}, nil)
			res := e.Export(ctx, breakTarget(t, srv, "p0", "c"))
			if err := d.Close(); err != nil {
				t.Error(err)
			}
			done <- res
		}()
		want := strings.Join(l.want, "\n") + "\n"
		waitLog(t, dir, want)
		// Logged while it follows.
		next(fmt.Sprint("followed-", reconnect), 4)
		waitLog(t, dir, strings.Join(l.want, "\n")+"\n")
		cancel()
		if res := <-done; res.Err != nil && !errors.Is(res.Err, context.Canceled) {
			t.Fatalf("follow %d: %v", reconnect, res.Err)
		}
		// Two requests: one that ends, to catch up (see catchUp), then the followed stream.
		if r := requests(); len(r) != 2 || r[0] <= 0 || r[1] <= 0 {
			t.Errorf("follow %d asked for tails %v, want two tails", reconnect, r)
		}
	}
}

// waitLog waits until p0/c's file holds want.
func waitLog(t *testing.T, dir, want string) {
	t.Helper()
	var file string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if file = readLog(t, dir, "p0", "c"); file == want {
			return
		}
	}
	i := firstDiff(file, want)
	t.Fatalf("file holds %d lines, want %d; first difference at byte %d: %q, want %q", strings.Count(file, "\n"), strings.Count(want, "\n"), i, file[i:min(len(file), i+40)], want[i:min(len(want), i+40)])
}

// A tail that missed is read to its end (it is short) before it is closed, so that the request
// from since that follows goes over the same HTTP/1.1 connection rather than dial a new one.
func TestTailMissKeepsConnection(t *testing.T) {
	// A tail more than the reader's first read takes, less than drainTail.
	l, dir := burstAfterStored(t, 80)
	requests := tailRequests(l.srv)
	var dials atomic.Int32
	cfg := l.srv.RESTConfig()
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	e, d := exporterOn(t, cfg, dir, Options{ResumeTail: 500})
	res := e.Export(context.Background(), breakTarget(t, l.srv, "p0", "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if res.Err != nil || res.Lines != 700 {
		t.Fatalf("resume: %d lines, %v", res.Lines, res.Err)
	}
	if r := requests(); len(r) != 2 || r[0] != 500 || r[1] != 0 {
		t.Fatalf("requests asked for tails %v, want a tail of 500 that misses, then none", r)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections dialed, want 1", n)
	}
}

// longSlowHistory is what a log held long before a test's lines: enough lines that a tail of the
// window and the margin is worth asking for (see tailShare), over so long that the mean rate adds
// nothing to the estimate.
func longSlowHistory(add func(...logserver.Entry), now time.Time) {
	for i := range 2000 {
		add(logserver.Entry{Time: now.Add(-1000*time.Hour + time.Duration(i)*time.Minute), Text: fmt.Sprintf("history-%d", i)})
	}
}

// burstAfterStored is a log of 200 lines a second apart, stored into dir, then 700 new ones
// within a second (each padded with pad bytes): a tail of 500 begins among them and misses.
func burstAfterStored(t *testing.T, pad int) (*tailLog, string) {
	t.Helper()
	l := newTailLog(t)
	now := time.Now()
	for i := range 200 {
		l.add(logserver.Entry{Time: now.Add(time.Duration(i-300) * time.Second), Text: fmt.Sprintf("old-%d", i)})
	}
	dir := l.stored(t, Options{})
	sec := now.Add(-100 * time.Second)
	for i := range 700 {
		l.add(logserver.Entry{Time: sec.Add(time.Duration(i) * time.Millisecond), Text: fmt.Sprintf("new-%d%s", i, strings.Repeat("x", pad))})
	}
	return l, dir
}
