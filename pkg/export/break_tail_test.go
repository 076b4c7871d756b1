package export

// Adversarial tests of the resume's tail (tailLines, see tail.go): a resume that asks for the
// log's last entries must store exactly what a resume from sinceTime alone stores. Each case
// failed while a tail was kept on finding the stored window's content in it, wherever the tail
// began (kept now only if it begins more than a second before since).

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// tailRun exports p0/c into dir once with opts and returns the result.
func tailRun(t *testing.T, srv *logserver.Server, dir string, opts Options) Result {
	t.Helper()
	e, d := breakExporter(t, srv, dir, opts, nil)
	res := e.Export(context.Background(), breakTarget(t, srv, "p0", "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return res
}

// tailLog records the entries appended and the lines the API serves of them (as a full read
// without since does).
type tailLog struct {
	srv  *logserver.Server
	want []string
	line string
}

// newTailLog is a fake cluster with pod p0 (container c) whose log is recorded as appended.
func newTailLog(t *testing.T) *tailLog {
	t.Helper()
	return &tailLog{srv: p0Server(t)}
}

// stored exports the log into a new directory, the run a resume starts from (its error is fatal).
func (l *tailLog) stored(t *testing.T, opts Options) string {
	t.Helper()
	dir := t.TempDir()
	if res := tailRun(t, l.srv, dir, opts); res.Err != nil {
		t.Fatal(res.Err)
	}
	return dir
}

// resume is stored, then later appended and a second run (its error fatal too), whose result and
// file it returns.
func (l *tailLog) resume(t *testing.T, opts Options, later ...logserver.Entry) (Result, string) {
	t.Helper()
	dir := l.stored(t, opts)
	l.add(later...)
	res := tailRun(t, l.srv, dir, opts)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	return res, readLog(t, dir, "p0", "c")
}

// cutTailRun is tailRun with the run's first tail response cut after cut bytes (and on to the end
// of the line if toEnd); cut tells whether a tail was asked for.
func cutTailRun(t *testing.T, srv *logserver.Server, dir string, opts Options, cut int64, toEnd bool) (res Result, wasCut bool) {
	t.Helper()
	srv.ShortenLogsFrom("", func(_, _ string, o *corev1.PodLogOptions) (int64, bool) {
		if o.TailLines != nil && !wasCut {
			wasCut = true
			return cut, toEnd
		}
		return -1, false
	})
	res = tailRun(t, srv, dir, opts)
	srv.ShortenLogsFrom("", nil)
	return res, wasCut
}

func (l *tailLog) add(entries ...logserver.Entry) {
	l.srv.Append("default", "p0", "c", entries...)
	for _, e := range entries {
		if l.line += e.Text; !e.Partial {
			l.want, l.line = append(l.want, l.line), ""
		}
	}
}

func (l *tailLog) file() string {
	if len(l.want) == 0 {
		return ""
	}
	return strings.Join(l.want, "\n") + "\n"
}

func checkFile(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		i := firstDiff(got, want)
		dump := ""
		if len(got) < 400 {
			dump = "\nfile:\n" + got
		}
		t.Errorf("file holds %d lines, want %d; first difference at byte %d: %q, want %q%s",
			strings.Count(got, "\n"), strings.Count(want, "\n"), i, got[i:min(len(got), i+40)], want[i:min(len(want), i+40)], dump)
	}
}

// tailRequests records the tailLines of each log request (0: none).
func tailRequests(srv *logserver.Server) func() []int64 {
	var mu sync.Mutex
	var tails []int64
	srv.OnLogRequest(func(_, _ string, o *corev1.PodLogOptions) {
		mu.Lock()
		defer mu.Unlock()
		n := int64(0)
		if o.TailLines != nil {
			n = *o.TailLines
		}
		tails = append(tails, n)
	})
	return func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		r := tails
		tails = nil
		return r
	}
}

// Identical lines with identical timestamps (which the README promises to keep, once each): the
// window is two of them, and the next run finds a third, logged after the first run, then another
// line. A tail that begins at the window's second line serves the window's first line's bytes
// first (the same text, the same timestamp), then as many as the window holds: the skipper takes
// them for the window, and the line logged after the first run is never written.
func TestBreakTailIdenticalLinesAfterWindow(t *testing.T) {
	for _, tail := range []int64{-1, 2, 3, 4, 5} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			T := time.Now().Add(-time.Minute).Truncate(time.Second).Add(123456789)
			l.add(logserver.Entry{Time: T, Text: "same"}, logserver.Entry{Time: T, Text: "same"})
			// Logged after the first run, in the same nanosecond (a coarse clock, a burst).
			res, got := l.resume(t, Options{ResumeTail: tail},
				logserver.Entry{Time: T, Text: "same"}, logserver.Entry{Time: T.Add(2 * time.Second), Text: "next"})
			if len(res.Gaps) > 0 {
				t.Errorf("gaps %v, want none", res.Gaps)
			}
			checkFile(t, got, l.file())
		})
	}
}

// As above, with the tool's own estimate (no --resume-tail): a long, slow history makes the
// estimate the window plus the margin, and a burst of identical lines (one timestamp) bigger than
// that puts the tail's start among them. Every line of the burst up to the tail's start, and as
// many again, is lost, with no gap.
func TestBreakTailEstimatedBurstOfIdenticalLines(t *testing.T) {
	l := newTailLog(t)
	now := time.Now()
	sec := now.Add(-time.Minute).Truncate(time.Second)
	longSlowHistory(l.add, now)
	for i := range 2 * tailMargin {
		l.add(logserver.Entry{Time: sec.Add(-10*time.Second + time.Duration(i)*time.Millisecond), Text: fmt.Sprintf("old-%d", i)})
	}
	T := sec.Add(500 * time.Millisecond)
	const window = 5
	for range window {
		l.add(logserver.Entry{Time: T, Text: "burst"})
	}
	requests := tailRequests(l.srv)
	dir := l.stored(t, Options{})
	if res := tailRun(t, l.srv, dir, Options{}); res.Err != nil { // a probe: learns the estimate
		t.Fatal(res.Err)
	}
	r := requests()
	n := r[len(r)-1]
	if n <= window {
		t.Fatalf("requests %v: no tail estimated", r)
	}
	// The burst goes on (the same timestamp), more than the tail holds.
	for range int(n) + 10 {
		l.add(logserver.Entry{Time: T, Text: "burst"})
	}
	res := tailRun(t, l.srv, dir, Options{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	t.Logf("requests asked for tails %v", requests())
	if len(res.Gaps) > 0 {
		t.Errorf("gaps %v, want none", res.Gaps)
	}
	checkFile(t, readLog(t, dir, "p0", "c"), l.file())
}

// A long line split into partial entries begins before the window's second, and its last entry
// has the window's first line's text and timestamp. From since alone it is an untimestamped tail,
// skipped. A tail that begins at that last entry serves it with a timestamp (the kubelet's reader
// starts as if at a line's start): it reads as the window's first line, the skipper takes it as
// the window, and the window's real first line is written again.
func TestBreakTailContinuationLooksLikeFirstLine(t *testing.T) {
	for _, tail := range []int64{-1, 2, 3, 4} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			sec := time.Now().Add(-time.Minute).Truncate(time.Second)
			T := sec.Add(100 * time.Millisecond)
			l.add(logserver.Entry{Time: sec.Add(-300 * time.Millisecond), Text: "old"},
				logserver.Entry{Time: sec.Add(-200 * time.Millisecond), Partial: true, Text: "head-"},
				logserver.Entry{Time: T, Text: "w"},
				logserver.Entry{Time: T, Text: "w"})
			res, got := l.resume(t, Options{ResumeTail: tail}, logserver.Entry{Time: sec.Add(3 * time.Second), Text: "next"})
			if len(res.Gaps) > 0 {
				t.Errorf("gaps %v, want none", res.Gaps)
			}
			checkFile(t, got, l.file())
		})
	}
}

// stdout's line is split into partial entries, and while it is being written stderr writes a
// whole line with the window's first line's text and timestamp: the kubelet serves it glued to
// stdout's line (one line for the API: the reader's isNewLine is shared by the streams), but at
// the start of a tail it gets its own timestamp and reads as the window's first line.
func TestBreakTailStderrEntryInsideStdoutLine(t *testing.T) {
	for _, tail := range []int64{-1, 2, 3, 4} {
		t.Run(fmt.Sprint("tail ", tail), func(t *testing.T) {
			l := newTailLog(t)
			sec := time.Now().Add(-time.Minute).Truncate(time.Second)
			T := sec.Add(100 * time.Millisecond)
			l.add(logserver.Entry{Time: T, Text: "e"},
				logserver.Entry{Time: T.Add(time.Millisecond), Partial: true, Text: "out-"})
			res, got := l.resume(t, Options{ResumeTail: tail}, logserver.Entry{Time: T, Stream: "stderr", Text: "e"},
				logserver.Entry{Time: T.Add(2 * time.Millisecond), Text: "end"},
				logserver.Entry{Time: sec.Add(3 * time.Second), Text: "next"})
			if len(res.Gaps) > 0 {
				t.Errorf("gaps %v, want none", res.Gaps)
			}
			// The API serves "T e", "T+1ms out-e" (stderr's entry glued on), "T+2ms end", "next".
			checkFile(t, got, "e\nout-e\nend\nnext\n")
		})
	}
}
