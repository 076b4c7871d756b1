package export

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

func TestStoredToEnd(t *testing.T) {
	ended := &instance{id: "c://a", started: ts(0, 0), finished: ts(10, 0)}
	endedPrev := &instance{id: "c://a", started: ts(0, 0), finished: ts(10, 0), previous: true}
	running := &instance{id: "c://b", started: ts(11, 0), running: true}
	named := &instance{id: startID("uid", ts(0, 0)), started: ts(0, 0), finished: ts(10, 0)}
	complete := func(id string) *store.Checkpoint {
		return &store.Checkpoint{PodUID: "uid", Instance: id, Complete: id, Confirmed: true}
	}
	// unconfirmed: read to its end once, which is enough to know what a pod that went lost, not
	// to skip the next request.
	unconfirmed := &store.Checkpoint{PodUID: "uid", Instance: "c://a", Complete: "c://a"}
	tests := []struct {
		name            string
		cp              *store.Checkpoint
		older, current  *instance
		want            *instance
		wantOlder, none bool
		// unconfirmed: what storedToEnd gives when the confirmation is not asked for (want if nil).
		unconfirmed *instance
	}{
		{name: "read to its end once", cp: unconfirmed, current: ended, unconfirmed: ended},
		{name: "previous instance read to its end once", cp: unconfirmed, older: endedPrev, current: running, unconfirmed: endedPrev},
		{name: "no checkpoint", current: ended},
		{name: "not marked", cp: &store.Checkpoint{PodUID: "uid", Instance: "c://a"}, current: ended},
		{name: "current terminated and stored to its end", cp: complete("c://a"), current: ended, want: ended},
		{name: "previous instance stored to its end, the new one runs", cp: complete("c://a"), older: endedPrev, current: running, want: endedPrev},
		// Container IDs never come back; a status that says so is not believed.
		{name: "the instance runs", cp: complete("c://b"), current: running},
		{name: "another instance now", cp: complete("c://z"), current: ended},
		{name: "mark of another instance than the checkpoint's", cp: &store.Checkpoint{PodUID: "uid", Instance: "c://b", Complete: "c://a"}, current: ended},
		{name: "another pod of the same name", cp: &store.Checkpoint{PodUID: "old", Instance: "c://a", Complete: "c://a"}, current: ended},
		// Two instances started in the same second have the same name.
		{name: "named by its start time", cp: complete(named.id), current: named},
		{name: "not started", cp: complete("c://a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := storedToEnd(tt.cp, "uid", tt.older, tt.current, true); got != tt.want {
				t.Errorf("storedToEnd, confirmed = %+v, want %+v", got, tt.want)
			}
			want := tt.want
			if tt.unconfirmed != nil {
				want = tt.unconfirmed
			}
			if got := storedToEnd(tt.cp, "uid", tt.older, tt.current, false); got != want {
				t.Errorf("storedToEnd = %+v, want %+v", got, want)
			}
		})
	}
}

func TestReadToEnd(t *testing.T) {
	ended := &instance{id: "c://a", started: ts(0, 0), finished: ts(10, 500)}
	tests := []struct {
		name     string
		in       *instance
		matched  bool
		earliest time.Time
		want     bool
	}{
		{name: "a line older than the second it finished", in: ended, earliest: ts(9, 999999999), want: true},
		{name: "the stored window served as stored", in: ended, matched: true, want: true},
		// A new instance started after it finished can have logged in that second.
		{name: "lines only in the second it finished", in: ended, earliest: ts(10, 0)},
		{name: "lines after it finished: a newer instance served them", in: ended, earliest: ts(12, 0)},
		{name: "no line", in: ended},
		// The node's clock stepped back: the line proves nothing.
		{name: "a line older than its start", in: ended, earliest: ts(-1, 0)},
		{name: "in the second it started", in: ended, earliest: ts(0, 0), want: true},
		{name: "running", in: &instance{id: "c://a", started: ts(0, 0), running: true}, matched: true, earliest: ts(1, 0)},
		{name: "finish unknown", in: &instance{id: "c://a", started: ts(0, 0)}, earliest: ts(1, 0)},
		{name: "finish unknown, window served", in: &instance{id: "c://a", started: ts(0, 0)}, matched: true, want: true},
		{name: "previous=true stream", in: &instance{id: "c://a", started: ts(0, 0), finished: ts(10, 0), previous: true}, matched: true, earliest: ts(1, 0)},
		{name: "named by its start time", in: &instance{id: startID("uid", ts(0, 0)), started: ts(0, 0), finished: ts(10, 0)}, matched: true, earliest: ts(1, 0)},
		{name: "no instance ID", in: &instance{started: ts(0, 0), finished: ts(10, 0)}, matched: true, earliest: ts(1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readToEnd(tt.in, tt.matched, tt.earliest); got != tt.want {
				t.Errorf("readToEnd = %v, want %v", got, tt.want)
			}
		})
	}
}

// logCounts counts an exporter's log requests, current and previous.
type logCounts struct {
	mu                sync.Mutex
	current, previous int
}

func (c *logCounts) count(r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/log") {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if previousRequest(r) {
		c.previous++
	} else {
		c.current++
	}
}

// storedCheckpointOf returns p0/c's checkpoint in dir.
func storedCheckpointOf(t *testing.T, dir string) *store.Checkpoint {
	t.Helper()
	d, err := store.Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cp, err := d.Checkpoint("default", "p0", "c")
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// A container instance that terminated and whose log is stored up to its end is not requested
// again, and only then: once one read reached its end and a second ended at the same line. Each
// case runs exports one after the other and says, for each, how many log requests it made
// (current, previous), what the file holds after it, and what the checkpoint says.
func TestTerminatedNotRequestedAgain(t *testing.T) {
	type run struct {
		before            func(srv *logserver.Server, clock *time.Time)
		current, previous int
		file              string
		complete          bool // the checkpoint says the instance was read to its end
		confirmed         bool // and that a second read confirmed it (not requested again)
		remove            bool // the stored log is removed before the run
		// damage, if set, leaves the log file as a run killed at some point would.
		damage func(t *testing.T, file string)
	}
	appendAt := func(srv *logserver.Server, at time.Time, texts ...string) {
		for i, s := range texts {
			srv.Append("default", "p0", "c", logserver.Entry{Time: at.Add(time.Duration(i) * time.Millisecond), Text: s})
		}
	}
	// terminate stops p0/c two seconds after now: its lines are older than the second it finished.
	terminate := func(srv *logserver.Server, clock *time.Time) {
		*clock = clock.Add(2 * time.Second)
		srv.Terminate("default", "p0", "c", 0)
	}
	// readOnce leaves a-1 read to the end of its terminated instance, unconfirmed.
	readOnce := run{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1"); terminate(srv, clock) },
		current: 1, file: "a-1\n", complete: true}
	confirmed := func(n int, file string) run { return run{current: n, file: file, complete: true, confirmed: true} }
	tests := []struct {
		name string
		runs []run
	}{
		{"terminated with lines before the second it finished: read, confirmed, then not requested", []run{
			{before: func(srv *logserver.Server, clock *time.Time) {
				appendAt(srv, *clock, "a-1", "a-2")
				terminate(srv, clock)
			},
				current: 1, file: "a-1\na-2\n", complete: true},
			confirmed(1, "a-1\na-2\n"),
			confirmed(0, "a-1\na-2\n"),
			confirmed(0, "a-1\na-2\n"),
		}},
		{"stored while running, then terminated: read to its end once more, then confirmed", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1") }, current: 1, file: "a-1\n"},
			{before: func(srv *logserver.Server, clock *time.Time) {
				appendAt(srv, clock.Add(time.Second), "a-2")
				terminate(srv, clock)
			},
				current: 1, file: "a-1\na-2\n", complete: true},
			confirmed(1, "a-1\na-2\n"),
			confirmed(0, "a-1\na-2\n"),
		}},
		// The first read is not proven the instance's (a newer one may have logged in that
		// second), the second is, by the stored window, and the third confirms its end.
		{"lines only in the second it finished: proven by the window the next time, then confirmed", []run{
			{before: func(srv *logserver.Server, clock *time.Time) {
				appendAt(srv, *clock, "a-1")
				srv.Terminate("default", "p0", "c", 0)
			}, current: 1, file: "a-1\n"},
			{current: 1, file: "a-1\n", complete: true},
			confirmed(1, "a-1\n"),
			confirmed(0, "a-1\n"),
		}},
		// What a run stored while the instance ran says nothing of where its log ends: a read
		// after it stopped that serves the stored lines and nothing more (a response ended early
		// right after them) is the first read of its end, not the second.
		{"stored while running, stopped without a new line: read to its end, then confirmed", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1") }, current: 1, file: "a-1\n"},
			{before: terminate, current: 1, file: "a-1\n", complete: true},
			confirmed(1, "a-1\n"),
			confirmed(0, "a-1\n"),
		}},
		{"an empty log proves nothing: requested every time", []run{
			{before: terminate, current: 1},
			{current: 1},
		}},
		{"a restart after it was confirmed: the previous instance is not requested", []run{
			readOnce,
			confirmed(1, "a-1\n"),
			{before: func(srv *logserver.Server, clock *time.Time) {
				*clock = clock.Add(time.Second)
				srv.Restart("default", "p0", "c")
				appendAt(srv, *clock, "b-1")
			}, current: 1, previous: 0, file: "a-1\nb-1\n"},
			{before: func(srv *logserver.Server, clock *time.Time) {
				appendAt(srv, clock.Add(time.Second), "b-2")
				terminate(srv, clock)
			},
				current: 1, file: "a-1\nb-1\nb-2\n", complete: true},
			confirmed(1, "a-1\nb-1\nb-2\n"),
			confirmed(0, "a-1\nb-1\nb-2\n"),
		}},
		{"a restart after it was read to its end once: the previous instance is read once more", []run{
			readOnce,
			{before: func(srv *logserver.Server, clock *time.Time) {
				*clock = clock.Add(time.Second)
				srv.Restart("default", "p0", "c")
				appendAt(srv, *clock, "b-1")
			}, current: 1, previous: 1, file: "a-1\nb-1\n"},
		}},
		// Twice: the second read, which serves the stored lines and nothing more, confirms the
		// first's end before the checkpoint moves on to the new instance.
		{"a restart before it was stored to its end: the previous instance's tail is read and confirmed", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1") }, current: 1, file: "a-1\n"},
			{before: func(srv *logserver.Server, clock *time.Time) {
				appendAt(srv, clock.Add(time.Second), "a-2")
				terminate(srv, clock)
				srv.Restart("default", "p0", "c")
				appendAt(srv, *clock, "b-1")
			}, current: 1, previous: 2, file: "a-1\na-2\nb-1\n"},
		}},
		{"confirmed, then its file removed: read again from the start, and confirmed again", []run{
			readOnce,
			confirmed(1, "a-1\n"),
			{remove: true, current: 1, file: "a-1\n", complete: true},
			confirmed(1, "a-1\n"),
			confirmed(0, "a-1\n"),
		}},
		// A killed run's leftovers beside a log stored to its end are dealt with (by OpenLog)
		// before the log is skipped.
		{"confirmed, then bytes of a killed run after it: cut off, not requested", []run{
			readOnce,
			confirmed(1, "a-1\n"),
			{damage: func(t *testing.T, file string) {
				f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteString("a-1\nhal"); err != nil {
					t.Fatal(err)
				}
			}, current: 0, file: "a-1\n", complete: true, confirmed: true},
			confirmed(0, "a-1\n"),
		}},
		{"confirmed, its save's rename lost in a crash: renamed, not requested", []run{
			readOnce,
			confirmed(1, "a-1\n"),
			{damage: func(t *testing.T, file string) {
				if err := os.Rename(file, filepath.Join(filepath.Dir(file), ".c.log.new")); err != nil {
					t.Fatal(err)
				}
			}, current: 0, file: "a-1\n", complete: true, confirmed: true},
			confirmed(0, "a-1\n"),
		}},
		{"running: asked every time", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1") }, current: 1, file: "a-1\n"},
			{current: 1, file: "a-1\n"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, clock := clockedServer(t)
			dir := t.TempDir()
			for i, r := range tt.runs {
				if r.before != nil {
					r.before(srv, clock)
				}
				if r.damage != nil {
					r.damage(t, filepath.Join(dir, "default", "p0", "c.log"))
				}
				if r.remove {
					if err := os.Remove(filepath.Join(dir, "default", "p0", "c.log")); err != nil {
						t.Fatal(err)
					}
				}
				var n logCounts
				e, d := breakExporter(t, srv, dir, Options{}, n.count)
				res := e.Export(context.Background(), breakTarget(t, srv, "p0", "c"))
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				if res.Err != nil || len(res.Gaps) > 0 {
					t.Fatalf("run %d: err %v, gaps %v", i+1, res.Err, res.Gaps)
				}
				if n.current != r.current || n.previous != r.previous {
					t.Errorf("run %d: %d requests of the current log and %d of the previous, want %d and %d", i+1, n.current, n.previous, r.current, r.previous)
				}
				if got := readLog(t, dir, "p0", "c"); got != r.file {
					t.Errorf("run %d: file %q, want %q", i+1, got, r.file)
				}
				cp := storedCheckpointOf(t, dir)
				if complete := cp != nil && cp.Complete != "" && cp.Complete == cp.Instance; complete != r.complete {
					t.Errorf("run %d: checkpoint %+v, want read to its end: %v", i+1, cp, r.complete)
				}
				if confirmed := cp != nil && cp.Confirmed; confirmed != r.confirmed {
					t.Errorf("run %d: checkpoint %+v, want confirmed: %v", i+1, cp, r.confirmed)
				}
				if res.File == "" {
					t.Errorf("run %d: no file in the result", i+1)
				}
			}
		})
	}
}

// A stream that is cut before its end, of an instance that terminated, leaves it to be read
// again: what follows the cut may be unstored.
func TestTerminatedCutStreamNotComplete(t *testing.T) {
	srv := logserver.New(t)
	defer srv.Close()
	clock := time.Now().Add(-time.Hour).Truncate(time.Second)
	srv.NodeClock = func() time.Time { return clock }
	srv.AddPod("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: clock.Add(time.Millisecond), Text: "a-1"}, logserver.Entry{Time: clock.Add(2 * time.Millisecond), Text: "a-2"})
	clock = clock.Add(3 * time.Second)
	srv.Terminate("default", "p0", "c", 0)
	dir := t.TempDir()
	cut := func(n int, r *http.Request) (int, bool) { return 1, false }
	if res := exportOnce(t, srv, dir, Options{}, cut); res.Err == nil {
		t.Fatalf("the cut stream did not fail: %+v", res)
	}
	if cp := storedCheckpointOf(t, dir); cp != nil && cp.Complete != "" {
		t.Fatalf("a cut stream marked the instance stored to its end: %+v", cp)
	}
	if res := exportOnce(t, srv, dir, Options{}, nil); res.Err != nil {
		t.Fatalf("the export after the cut: %v", res.Err)
	}
	if got := readLog(t, dir, "p0", "c"); got != "a-1\na-2\n" {
		t.Fatalf("file %q, want both lines", got)
	}
	if cp := storedCheckpointOf(t, dir); cp == nil || cp.Complete == "" {
		t.Fatalf("read to its end, the instance is not marked: %+v", cp)
	}
}

// The kubelet restarted the container (A -> B) after A terminated, but the API server still
// shows A terminated, for the list and for the GET that proves the stream's instance: the
// stream served B's lines, which the status check takes for A's. A must not be marked stored to
// its end then, or its own lines would never be read: once the status caught up, they are.
func TestTerminatedLaggingStatusNotComplete(t *testing.T) {
	srv := logserver.New(t)
	defer srv.Close()
	clock := time.Now().Add(-time.Hour).Truncate(time.Second)
	srv.NodeClock = func() time.Time { return clock }
	srv.AddPod("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: clock.Add(time.Millisecond), Text: "a-1"})
	clock = clock.Add(3 * time.Second)
	srv.Terminate("default", "p0", "c", 1)
	stale := srv.Pod("default", "p0").DeepCopy()
	clock = clock.Add(3 * time.Second)
	srv.Restart("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: clock.Add(time.Millisecond), Text: "b-1"})

	dir := t.TempDir()
	lag := stale
	e, d := staleExporter(t, srv, dir, &lag)
	res := e.Export(context.Background(), target.Of(stale, "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("lagging run: lines %d, err %v, file %q", res.Lines, res.Err, readLog(t, dir, "p0", "c"))
	if cp := storedCheckpointOf(t, dir); cp != nil && cp.Complete != "" {
		t.Fatalf("B's lines, served for A, marked A stored to its end: %+v", cp)
	}
	lag = nil
	e, d = staleExporter(t, srv, dir, &lag)
	res = e.Export(context.Background(), breakTarget(t, srv, "p0", "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	got := readLog(t, dir, "p0", "c")
	if !strings.Contains(got, "a-1\n") {
		// Without the mark, the run asks previous=true for A and finds B's lines served by B: a
		// gap is reported for what A logged.
		if len(res.Gaps) == 0 {
			t.Fatalf("A's line is neither stored nor in a reported gap: file %q, result %+v", got, res)
		}
	}
	if strings.Count(got, "b-1\n") != 1 {
		t.Fatalf("B's line stored %d times: %q", strings.Count(got, "b-1\n"), got)
	}
}

// clockedServer is a fake cluster with pod p0 (container c) on a node whose clock is *clock,
// an hour ago, a tenth of a second into a second.
func clockedServer(t *testing.T) (*logserver.Server, *time.Time) {
	srv := logserver.New(t)
	t.Cleanup(srv.Close)
	clock := new(time.Time)
	*clock = time.Now().Add(-time.Hour).Truncate(time.Second).Add(100 * time.Millisecond)
	srv.NodeClock = func() time.Time { return *clock }
	srv.AddPod("default", "p0", "c")
	return srv, clock
}

// shortBody ends a response normally after left bytes, as the API server ends a log response
// whose copy from the kubelet broke off: it drops the copy's error, and the client reads EOF.
type shortBody struct {
	rc   io.ReadCloser
	left int
}

func (b *shortBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

func (b *shortBody) Close() error { return b.rc.Close() }

// exportShort runs one export of p0/c into dir whose log responses keep(n) bytes of the n-th
// (from 1; negative: all), and returns its result and how many log requests it made.
func exportShort(t *testing.T, srv *logserver.Server, dir string, opts Options, keep func(n int) int) (Result, int) {
	t.Helper()
	return exportShortAt(t, srv, dir, opts, nil, keep)
}

// exportShortAt is exportShort with a hook called at the n-th log request, before it is sent
// (at and keep may be nil).
func exportShortAt(t *testing.T, srv *logserver.Server, dir string, opts Options, at func(n int), keep func(n int) int) (Result, int) {
	t.Helper()
	var mu sync.Mutex
	requests := 0
	e, d := logExporter(t, srv, dir, opts, func(n int, r *http.Request) (*http.Request, func(io.ReadCloser) io.ReadCloser) {
		mu.Lock()
		requests = n
		mu.Unlock()
		if at != nil {
			at(n)
		}
		k := -1
		if keep != nil {
			k = keep(n)
		}
		if k < 0 {
			return r, nil
		}
		return r, func(rc io.ReadCloser) io.ReadCloser { return &shortBody{rc: rc, left: k} }
	})
	res := e.Export(context.Background(), breakTarget(t, srv, "p0", "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res, requests
}

// A stream that ended early but normally (the API server's copy from the kubelet broke off) is
// taken for the end of a terminated instance's log by the read itself; what followed the break
// must still be read by a later run, not skipped as stored, and a line the break cut must be
// stored whole. Runs are repeated until one makes no log request, the first's response ending
// after a number of bytes (never: the log as served), of a log whose last line ends with a
// newline or, as a finished container's last output can, without one.
func TestTerminatedShortStreamRead(t *testing.T) {
	texts := []string{"a-1", "a-2", "a-3", "a-4"}
	line := len("2006-01-02T15:04:05.000000000Z ") + len("a-1\n") // bytes of one served line
	for _, tt := range []struct {
		name string
		keep int // the bytes the first response keeps; 0: all
		// runs that make a request: to its end, then the confirming one (a stream that ends
		// inside a line is read again in the same run, so an unterminated last line costs no run).
		runs int
		// failed: the first run fails for the container (a line whose timestamp is cut short
		// cannot be told from a broken stream); the next one reads on.
		failed bool
	}{
		{name: "not cut", runs: 2},
		{name: "after two lines", keep: 2 * line, runs: 3},
		{name: "inside the first line", keep: line - 2, runs: 2},
		{name: "inside the third line's text", keep: 3*line - 2, runs: 2},
		{name: "inside the third line's timestamp", keep: 2*line + 10, runs: 3, failed: true},
		{name: "inside the last line", keep: 4*line - 2, runs: 2},
	} {
		for _, unterminated := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, last line unterminated %v", tt.name, unterminated), func(t *testing.T) {
				srv, clock := clockedServer(t)
				for i, s := range texts {
					srv.Append("default", "p0", "c", logserver.Entry{Time: clock.Add(time.Duration(i) * time.Millisecond), Text: s,
						Partial: unterminated && i == len(texts)-1})
				}
				*clock = clock.Add(2 * time.Second)
				srv.Terminate("default", "p0", "c", 0)
				dir := t.TempDir()
				var gaps []Gap
				runs := 0
				for run := 1; ; run++ {
					if run > 6 {
						t.Fatalf("still requested after %d runs", run-1)
					}
					res, requests := exportShort(t, srv, dir, Options{}, func(n int) int {
						if run == 1 && n == 1 && tt.keep > 0 {
							return tt.keep
						}
						return -1
					})
					if res.Err != nil && !(run == 1 && tt.failed) {
						t.Fatalf("run %d: %v", run, res.Err)
					}
					if run == 1 && tt.failed && res.Err == nil {
						t.Fatalf("run 1 did not fail")
					}
					gaps = append(gaps, res.Gaps...)
					if requests == 0 {
						break
					}
					runs++
				}
				if got := readLog(t, dir, "p0", "c"); got != "a-1\na-2\na-3\na-4\n" || len(gaps) > 0 {
					t.Fatalf("file %q, gaps %v; want every line once, whole, and no gap", got, gaps)
				}
				if cp := storedCheckpointOf(t, dir); cp == nil || !cp.Confirmed {
					t.Fatalf("not confirmed in the end: %+v", cp)
				}
				if runs != tt.runs {
					t.Errorf("%d runs made a request, want %d", runs, tt.runs)
				}
			})
		}
	}
}

// Short reads in the sequences a break attempt found (each lost a line, doubled one, or kept a
// container from being read). Every run's n-th log request may be cut after some bytes (cuts,
// by run and request from 1); runs repeat up to runs times. In the end the file must hold want,
// with no gap unless gaps says one may be reported, and the last run must make at most last
// requests (0: a stopped container, confirmed, is not read again).
func TestShortReadSequences(t *testing.T) {
	line := len("2006-01-02T15:04:05.000000000Z ") + len("a-1\n")
	type cut struct{ run, request int }
	add := func(srv *logserver.Server, at time.Time, unterminated bool, texts ...string) {
		for i, s := range texts {
			srv.Append("default", "p0", "c", logserver.Entry{Time: at.Add(time.Duration(i) * time.Millisecond), Text: s, Partial: unterminated && i == len(texts)-1})
		}
	}
	tests := []struct {
		name string
		opts Options
		// before runs before the given run (1-based), on the server and the node's clock.
		before map[int]func(srv *logserver.Server, clock *time.Time)
		cuts   map[cut]int
		runs   int
		want   string
		gaps   bool
		last   int
	}{
		{name: "a later look cut short after an earlier look went on does not confirm",
			before: map[int]func(*logserver.Server, *time.Time){1: func(srv *logserver.Server, clock *time.Time) {
				add(srv, *clock, true, "a-1", "a-2", "a-3", "a-4")
				*clock = clock.Add(2 * time.Second)
				srv.Terminate("default", "p0", "c", 0)
			}},
			cuts: map[cut]int{{1, 1}: line, {2, 1}: 4*line - 2, {2, 2}: 3 * line},
			runs: 6, want: "a-1\na-2\na-3\na-4\n"},
		{name: "an unterminated last line after a short read taken for a rotation is stored",
			before: map[int]func(*logserver.Server, *time.Time){
				1: func(srv *logserver.Server, clock *time.Time) { add(srv, *clock, false, "a-1", "a-2") },
				2: func(srv *logserver.Server, clock *time.Time) {
					add(srv, clock.Add(10*time.Millisecond), true, "a-3")
					*clock = clock.Add(2 * time.Second)
					srv.Terminate("default", "p0", "c", 0)
				}},
			cuts: map[cut]int{{2, 1}: line},
			runs: 6, want: "a-1\na-2\na-3\n", gaps: true},
		{name: "the same on a previous instance does not keep the new one from being read",
			before: map[int]func(*logserver.Server, *time.Time){
				1: func(srv *logserver.Server, clock *time.Time) { add(srv, *clock, false, "a-1", "a-2") },
				2: func(srv *logserver.Server, clock *time.Time) {
					add(srv, clock.Add(10*time.Millisecond), true, "a-3")
					*clock = clock.Add(2 * time.Second)
					srv.Terminate("default", "p0", "c", 0)
					srv.Restart("default", "p0", "c")
					srv.Append("default", "p0", "c", logserver.Entry{Time: *clock, Text: "b-1"})
				}},
			cuts: map[cut]int{{2, 1}: line},
			runs: 5, want: "a-1\na-2\na-3\nb-1\n", gaps: true, last: 1},
		{name: "--since after the previous instance's lines holds when it is read again",
			opts: Options{Since: time.Now().Add(-30 * time.Minute)},
			before: map[int]func(*logserver.Server, *time.Time){1: func(srv *logserver.Server, clock *time.Time) {
				add(srv, *clock, false, "a-1", "a-2")
				*clock = clock.Add(2 * time.Second)
				srv.Terminate("default", "p0", "c", 0)
				srv.Restart("default", "p0", "c")
				srv.Append("default", "p0", "c", logserver.Entry{Time: time.Now().Add(-time.Minute), Text: "b-1"})
			}},
			runs: 3, want: "b-1\n", last: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, clock := clockedServer(t)
			dir := t.TempDir()
			var gaps []Gap
			requests := 0
			for run := 1; run <= tt.runs; run++ {
				if f := tt.before[run]; f != nil {
					f(srv, clock)
				}
				var res Result
				res, requests = exportShort(t, srv, dir, tt.opts, func(n int) int {
					if keep, ok := tt.cuts[cut{run, n}]; ok {
						return keep
					}
					return -1
				})
				if res.Err != nil {
					t.Fatalf("run %d: %v", run, res.Err)
				}
				gaps = append(gaps, res.Gaps...)
			}
			if got := readLog(t, dir, "p0", "c"); got != tt.want || len(gaps) > 0 && !tt.gaps {
				t.Fatalf("file %q, gaps %v; want %q", got, gaps, tt.want)
			}
			if requests > tt.last {
				t.Errorf("the last run made %d log requests, want at most %d", requests, tt.last)
			}
		})
	}
}

// The previous instance's log goes (the kubelet removed the dead container) between the read
// that stored its tail and the read that confirms its end: the gap begins after what was stored,
// not at the checkpoint the run began with.
func TestPreviousGoneWhileSettling(t *testing.T) {
	srv := logserver.New(t)
	defer srv.Close()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	srv.NodeClock = func() time.Time { return base.Add(5 * time.Second) }
	srv.AddPod("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: base, Text: "a-1"})
	dir := t.TempDir()
	if res := exportOnce(t, srv, dir, Options{}, nil); res.Err != nil {
		t.Fatal(res.Err)
	}
	srv.Append("default", "p0", "c", logserver.Entry{Time: base.Add(2 * time.Second), Text: "a-2"})
	srv.Terminate("default", "p0", "c", 0)
	srv.Restart("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: base.Add(6 * time.Second), Text: "b-1"})
	previous := 0
	res := exportOnce(t, srv, dir, Options{}, func(n int, r *http.Request) (int, bool) {
		if previousRequest(r) {
			previous++
			return -1, previous == 2 // the confirming read finds it gone
		}
		return -1, false
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := readLog(t, dir, "p0", "c"); got != "a-1\na-2\nb-1\n" {
		t.Fatalf("file %q", got)
	}
	if len(res.Gaps) != 1 || !res.Gaps[0].From.Equal(base.Add(2*time.Second)) {
		t.Fatalf("gaps %v, want one from a-2's time %s", res.Gaps, base.Add(2*time.Second))
	}
}
