package export

import (
	"context"
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
		return &store.Checkpoint{PodUID: "uid", Instance: id, Complete: id}
	}
	tests := []struct {
		name            string
		cp              *store.Checkpoint
		older, current  *instance
		want            *instance
		wantOlder, none bool
	}{
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
			if got := storedToEnd(tt.cp, "uid", tt.older, tt.current); got != tt.want {
				t.Errorf("storedToEnd = %+v, want %+v", got, tt.want)
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
// again, and only then: each case runs exports one after the other and says, for each, how many
// log requests it made (current, previous) and what the file holds after it.
func TestTerminatedNotRequestedAgain(t *testing.T) {
	type run struct {
		before            func(srv *logserver.Server, clock *time.Time)
		current, previous int
		file              string
		complete          bool // the checkpoint says the instance is stored to its end
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
	tests := []struct {
		name string
		runs []run
	}{
		{"terminated with lines before the second it finished: read once", []run{
			{before: func(srv *logserver.Server, clock *time.Time) {
				appendAt(srv, *clock, "a-1", "a-2")
				terminate(srv, clock)
			},
				current: 1, file: "a-1\na-2\n", complete: true},
			{current: 0, file: "a-1\na-2\n", complete: true},
			{current: 0, file: "a-1\na-2\n", complete: true},
		}},
		{"stored while running, then terminated: read to its end once more", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1") }, current: 1, file: "a-1\n"},
			{before: func(srv *logserver.Server, clock *time.Time) {
				appendAt(srv, clock.Add(time.Second), "a-2")
				terminate(srv, clock)
			},
				current: 1, file: "a-1\na-2\n", complete: true},
			{current: 0, file: "a-1\na-2\n", complete: true},
		}},
		{"lines only in the second it finished: proven by the stored window the next time", []run{
			{before: func(srv *logserver.Server, clock *time.Time) {
				appendAt(srv, *clock, "a-1")
				srv.Terminate("default", "p0", "c", 0)
			}, current: 1, file: "a-1\n"},
			{current: 1, file: "a-1\n", complete: true},
			{current: 0, file: "a-1\n", complete: true},
		}},
		{"an empty log proves nothing: requested every time", []run{
			{before: terminate, current: 1},
			{current: 1},
		}},
		{"a restart after it was stored to its end: the previous instance is not requested", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1"); terminate(srv, clock) },
				current: 1, file: "a-1\n", complete: true},
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
			{current: 0, file: "a-1\nb-1\nb-2\n", complete: true},
		}},
		{"a restart before it was stored to its end: the previous instance's tail is read", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1") }, current: 1, file: "a-1\n"},
			{before: func(srv *logserver.Server, clock *time.Time) {
				appendAt(srv, clock.Add(time.Second), "a-2")
				terminate(srv, clock)
				srv.Restart("default", "p0", "c")
				appendAt(srv, *clock, "b-1")
			}, current: 1, previous: 1, file: "a-1\na-2\nb-1\n"},
		}},
		{"stored to its end, then its file removed: read again from the start", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1"); terminate(srv, clock) },
				current: 1, file: "a-1\n", complete: true},
			{remove: true, current: 1, file: "a-1\n", complete: true},
			{current: 0, file: "a-1\n", complete: true},
		}},
		// A killed run's leftovers beside a log stored to its end are dealt with (by OpenLog)
		// before the log is skipped.
		{"stored to its end, then bytes of a killed run after it: cut off, not requested", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1"); terminate(srv, clock) },
				current: 1, file: "a-1\n", complete: true},
			{damage: func(t *testing.T, file string) {
				f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteString("a-1\nhal"); err != nil {
					t.Fatal(err)
				}
			}, current: 0, file: "a-1\n", complete: true},
			{current: 0, file: "a-1\n", complete: true},
		}},
		{"stored to its end, its first save's rename lost in a crash: renamed, not requested", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1"); terminate(srv, clock) },
				current: 1, file: "a-1\n", complete: true},
			{damage: func(t *testing.T, file string) {
				if err := os.Rename(file, filepath.Join(filepath.Dir(file), ".c.log.new")); err != nil {
					t.Fatal(err)
				}
			}, current: 0, file: "a-1\n", complete: true},
			{current: 0, file: "a-1\n", complete: true},
		}},
		{"running: asked every time", []run{
			{before: func(srv *logserver.Server, clock *time.Time) { appendAt(srv, *clock, "a-1") }, current: 1, file: "a-1\n"},
			{current: 1, file: "a-1\n"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := logserver.New(t)
			defer srv.Close()
			clock := time.Now().Add(-time.Hour).Truncate(time.Second).Add(100 * time.Millisecond)
			srv.NodeClock = func() time.Time { return clock }
			srv.AddPod("default", "p0", "c")
			dir := t.TempDir()
			for i, r := range tt.runs {
				if r.before != nil {
					r.before(srv, &clock)
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
					t.Errorf("run %d: checkpoint %+v, want stored to its end: %v", i+1, cp, r.complete)
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
