package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// b58Body serves a response piece by piece: at most chunk bytes per read, each after pause; after
// stallAt bytes (if > 0) it blocks until the request's context ends, or fails with failErr.
type b58Body struct {
	rc      io.ReadCloser
	ctx     context.Context
	chunk   int
	pause   time.Duration
	stallAt int
	failErr error
	n       int
	stalled chan struct{}
	once    sync.Once
}

func (b *b58Body) Read(p []byte) (int, error) {
	if b.stallAt > 0 && b.n >= b.stallAt {
		if b.failErr != nil {
			return 0, b.failErr
		}
		b.once.Do(func() { close(b.stalled) })
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	if b.pause > 0 {
		select {
		case <-time.After(b.pause):
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
	k := len(p)
	if b.chunk > 0 {
		k = min(k, b.chunk)
	}
	if b.stallAt > 0 {
		k = min(k, b.stallAt-b.n)
	}
	n, err := b.rc.Read(p[:k])
	b.n += n
	return n, err
}

func (b *b58Body) Close() error { return b.rc.Close() }

type b58Req struct {
	tail, since bool
	ctxErr      func() error
}

// b58Log: 200 old lines stored, then more appended: hit (50 lines, the tail of 500 reaches back
// past since) or miss (700 lines within a second, the tail begins inside them).
func b58Log(t *testing.T, hit bool) (*tailLog, string, int) {
	l := newTailLog(t)
	now := time.Now()
	for i := range 200 {
		l.add(logserver.Entry{Time: now.Add(time.Duration(i-300) * time.Second), Text: fmt.Sprintf("old-%d", i)})
	}
	dir := l.stored(t, Options{})
	n := 700
	if hit {
		n = 50
	}
	sec := now.Add(-100 * time.Second)
	for i := range n {
		l.add(logserver.Entry{Time: sec.Add(time.Duration(i) * time.Millisecond), Text: fmt.Sprintf("new-%d", i)})
	}
	return l, dir, n
}

func b58Exporter(t *testing.T, l *tailLog, dir string, wrap func(r *http.Request, b *b58Body)) (*Exporter, func() error, *[]b58Req, *sync.Mutex) {
	var mu sync.Mutex
	var reqs []b58Req
	cfg := l.srv.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err != nil || !strings.HasSuffix(r.URL.Path, "/log") {
				return resp, err
			}
			q := r.URL.Query()
			mu.Lock()
			reqs = append(reqs, b58Req{tail: q.Get("tailLines") != "", since: q.Get("sinceTime") != "", ctxErr: r.Context().Err})
			mu.Unlock()
			if q.Get("tailLines") != "" {
				b := &b58Body{rc: resp.Body, ctx: r.Context(), stalled: make(chan struct{})}
				wrap(r, b)
				resp.Body = b
			}
			return resp, err
		})
	}
	e, d := exporterOn(t, cfg, dir, Options{ResumeTail: 500})
	return e, d.Close, &reqs, &mu
}

// A valid tail (it holds the stored window) served slowly, in small pieces, over far more than
// drainWait: the request's own context must not end it; all new lines once, no request from
// since, no error.
func TestBreak58SlowTailHit(t *testing.T) {
	l, dir, n := b58Log(t, true)
	e, closeD, reqs, _ := b58Exporter(t, l, dir, func(_ *http.Request, b *b58Body) { b.chunk, b.pause = 300, 15*time.Millisecond })
	start := time.Now()
	res := e.Export(context.Background(), breakTarget(t, l.srv, "p0", "c"))
	took := time.Since(start)
	if err := closeD(); err != nil {
		t.Fatal(err)
	}
	if took < 3*drainWait {
		t.Fatalf("the tail took %v: not slow enough to test", took)
	}
	if res.Err != nil || res.Lines != int64(n) {
		t.Fatalf("slow tail that hit: %d lines, %v; want %d, no error", res.Lines, res.Err, n)
	}
	if len(*reqs) != 1 || !(*reqs)[0].tail {
		t.Fatalf("requests %+v, want the tail alone", *reqs)
	}
	checkFile(t, readLog(t, dir, "p0", "c"), l.file())
}

// A tail that missed, then its drain: served slowly (cut by drainWait), failing mid-drain, or
// served at once. The request from since must serve everything, once.
func TestBreak58TailMissDrainKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(*http.Request, *b58Body)
	}{
		{"slow", func(_ *http.Request, b *b58Body) { b.chunk, b.pause = 512, 20*time.Millisecond }},
		{"fails mid-drain", func(_ *http.Request, b *b58Body) {
			b.stallAt, b.failErr = 3000, errors.New("connection reset by peer")
		}},
		{"stalls", func(_ *http.Request, b *b58Body) { b.stallAt = 3000 }},
		{"fast", func(*http.Request, *b58Body) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, dir, n := b58Log(t, false)
			e, closeD, reqs, _ := b58Exporter(t, l, dir, tc.wrap)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			res := e.Export(ctx, breakTarget(t, l.srv, "p0", "c"))
			took := time.Since(start)
			if err := closeD(); err != nil {
				t.Fatal(err)
			}
			if res.Err != nil || res.Lines != int64(n) {
				t.Fatalf("%d lines, %v; want %d, no error (took %v)", res.Lines, res.Err, n, took)
			}
			t.Logf("export took %v", took)
			if took > 2*time.Second {
				t.Errorf("took %v", took)
			}
			if len(*reqs) != 2 || !(*reqs)[0].tail || (*reqs)[1].tail || !(*reqs)[1].since {
				t.Errorf("requests %+v, want a tail, then one from since", *reqs)
			}
			checkFile(t, readLog(t, dir, "p0", "c"), l.file())
		})
	}
}

// The run itself is cancelled while a missed tail is drained (its response stalled): the export
// ends at once with the run's cancellation, writes nothing, and the next run stores every line once.
func TestBreak58TailMissRunCancelledInDrain(t *testing.T) {
	l, dir, n := b58Log(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stalls atomic.Int32
	e, closeD, _, _ := b58Exporter(t, l, dir, func(_ *http.Request, b *b58Body) {
		b.stallAt = 3000
		stalls.Add(1)
		go func() {
			<-b.stalled
			time.Sleep(30 * time.Millisecond) // inside drainWait
			cancel()
		}()
	})
	start := time.Now()
	res := e.Export(ctx, breakTarget(t, l.srv, "p0", "c"))
	took := time.Since(start)
	if err := closeD(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Err, context.Canceled) {
		t.Errorf("run cancelled in the drain: %d lines, err %v; want context.Canceled", res.Lines, res.Err)
	}
	if took > time.Second {
		t.Errorf("took %v after the cancel", took)
	}
	stored := strings.Join(l.want[:200], "\n") + "\n"
	checkFile(t, completeLines(readLog(t, dir, "p0", "c")), stored)
	res = tailRun(t, l.srv, dir, Options{ResumeTail: 500})
	if res.Err != nil || res.Lines != int64(n) {
		t.Fatalf("next run: %d lines, %v; want %d", res.Lines, res.Err, n)
	}
	checkFile(t, readLog(t, dir, "p0", "c"), l.file())
}
