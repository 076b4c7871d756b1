package export

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/logline"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// stallBody serves n bytes of the response, then blocks (a stalled server, a half-open
// connection) until the request's context ends.
type stallBody struct {
	rc   io.ReadCloser
	ctx  context.Context
	left int
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	n, err := b.rc.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

func (b *stallBody) Close() error { return b.rc.Close() }

// A tail that missed, whose response stalls after its first bytes: before adaa2b6 it was closed
// at once and the request from since served the resume; adaa2b6's drain waited for the stalled
// response as long as the run's context lasted (a one-shot export has no deadline, here 5 s).
// The drain now ends after drainWait.
func TestBreakTailMissDrainStalls(t *testing.T) {
	l, dir := burstAfterStored(t, 0)
	var stalled atomic.Int32
	cfg := l.srv.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err == nil && strings.Contains(r.URL.RawQuery, "tailLines") {
				stalled.Add(1)
				resp.Body = &stallBody{rc: resp.Body, ctx: r.Context(), left: 1500}
			}
			return resp, err
		})
	}
	e, d := exporterOn(t, cfg, dir, Options{ResumeTail: 500})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := e.Export(ctx, breakTarget(t, l.srv, "p0", "c"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if stalled.Load() != 1 {
		t.Fatalf("%d tail requests stalled, want 1", stalled.Load())
	}
	if res.Err != nil || res.Lines != 700 {
		t.Fatalf("resume after a stalled tail that missed: %d lines, %v (want 700 lines before the run's deadline)", res.Lines, res.Err)
	}
}

// A follower is served whole lines, each with the start of a long next line (longer than the
// line reader's buffer, so that Wait grows it), while the idle timer saves the checkpoint: the
// saved checkpoint must end at a line's end, the file must be exact, and (with -race) the timer's
// save must not touch what the reader moves.
func TestBreakIdlePartialLongLines(t *testing.T) {
	l := newTailLog(t)
	srv := l.srv
	sec := time.Now().Add(-time.Minute).Truncate(time.Second)
	l.add(logserver.Entry{Time: sec, Text: "a-0"})
	dir := l.stored(t, Options{})
	f := &ftFollower{t: t, srv: srv, dir: dir, opts: Options{Follow: true, CommitInterval: 40 * time.Millisecond}}
	f.start(1, false)
	defer f.stop()
	time.Sleep(200 * time.Millisecond)
	at := sec.Add(time.Second)
	for i := range 6 {
		// The rest of the previous long line, a whole line, and the start of the next long one.
		var es []logserver.Entry
		if i > 0 {
			es = append(es, logserver.Entry{Time: at, Text: strings.Repeat("z", 300) + fmt.Sprint("-end-", i)})
		}
		at = at.Add(time.Millisecond)
		es = append(es, logserver.Entry{Time: at, Text: fmt.Sprint("whole-", i)})
		at = at.Add(time.Millisecond)
		es = append(es, logserver.Entry{Time: at, Partial: true, Text: strings.Repeat(fmt.Sprint(i), 1500)})
		l.add(es...)
		want := strings.TrimSuffix(l.file(), "\n")
		want = want + "\n"
		if got, ok := f.wait(want, 3*time.Second); !ok {
			t.Fatalf("step %d: file %q, want %q\n%s", i, tailOf(got), tailOf(want), f.report())
		}
		// Wait past the commit interval so that the timer's save runs while the stream waits
		// inside the long line, then check the checkpoint ends at the file's complete lines.
		time.Sleep(150 * time.Millisecond)
		checkCommitted(t, dir, int64(len(want)))
	}
	l.add(logserver.Entry{Time: at, Text: "end"})
	if got, ok := f.wait(l.file(), 3*time.Second); !ok {
		t.Fatalf("final: %q\n%s", tailOf(got), f.report())
	}
	f.stop()
	if got := readLog(t, dir, "p0", "c"); got != l.file() {
		t.Fatalf("file after stop: %q, want %q", tailOf(got), tailOf(l.file()))
	}
}

func tailOf(s string) string {
	if len(s) > 200 {
		return "…" + s[len(s)-200:]
	}
	return s
}

// checkCommitted checks that p0/c's saved checkpoint covers size bytes (read as an inventory,
// without the lock, as a crash's next run would find it).
func checkCommitted(t *testing.T, dir string, size int64) {
	t.Helper()
	start := time.Now()
	var got, lines int64
	for time.Since(start) < 2*time.Second {
		inv, err := store.Inspect(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range inv.Logs {
			if l.Pod == "p0" && l.Container == "c" {
				got, lines = l.Bytes, l.Lines
			}
		}
		if got == size {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("2s on, the checkpoint covers %d bytes (%d lines), want %d (the complete lines served)", got, lines, size)
}

// A follower is served a whole line within the commit interval of the last save (so that idle
// sets its save timer), then, in a later read, the start of a line not ended: the whole line must
// be saved within the interval while the stream waits for the rest, also where the begun line is
// longer than the reader's buffer (then its fragments come, and the stream reads on inside it
// with no timer; helper 58), and where it comes in the whole line's read, filling the buffer
// (then idle is not called at all).
func TestBreakIdlePartialInLaterRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int // the reader's buffer size
		begun    int // bytes of the line begun
		together bool
	}{
		{"short", 0, 5, false},
		{"longer than a small buffer", 4096, 6000, false},
		{"longer than the default buffer", 0, logline.DefaultBufferSize + 4096, false},
		{"longer than a small buffer, in the whole line's read", 4096, 6000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, f, dir, sec := followBehindBegunLine(t, tc.size, strings.Repeat("x", tc.begun), tc.together)
			want := "a-0\nb-1\nb-2\n"
			checkCommitted(t, dir, int64(len(want)))
			l.add(logserver.Entry{Time: sec.Add(time.Second + 3*time.Millisecond), Text: "-end"})
			if got, ok := f.wait(l.file(), 3*time.Second); !ok {
				t.Fatalf("file %q, want %q\n%s", tailOf(got), tailOf(l.file()), f.report())
			}
		})
	}
}

// followBehindBegunLine follows a log (a-0 stored) with a reader of size bytes, and has it
// served b-1 after the commit interval (saved at once), b-2 within it (a timer), and then, in a
// later read unless together, the start of a line, begun, not ended. It returns once that start
// is served.
func followBehindBegunLine(t *testing.T, size int, begun string, together bool) (l *tailLog, f *ftFollower, dir string, sec time.Time) {
	t.Helper()
	l = newTailLog(t)
	sec = time.Now().Add(-time.Minute).Truncate(time.Second)
	l.add(logserver.Entry{Time: sec, Text: "a-0"})
	dir = l.stored(t, Options{})
	f = &ftFollower{t: t, srv: l.srv, dir: dir, opts: Options{Follow: true, CommitInterval: 100 * time.Millisecond, BufferSize: size}}
	f.start(1, false)
	t.Cleanup(f.stop)
	time.Sleep(300 * time.Millisecond)                              // following, last save long ago
	l.add(logserver.Entry{Time: sec.Add(time.Second), Text: "b-1"}) // saved at once (interval over)
	time.Sleep(20 * time.Millisecond)
	b2 := logserver.Entry{Time: sec.Add(time.Second + time.Millisecond), Text: "b-2"} // within the interval: timer
	start := logserver.Entry{Time: sec.Add(time.Second + 2*time.Millisecond), Partial: true, Text: begun}
	if together {
		l.add(b2, start)
		return l, f, dir, sec
	}
	l.add(b2)
	time.Sleep(20 * time.Millisecond)
	l.add(start)
	return l, f, dir, sec
}
