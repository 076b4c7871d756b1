package export

// Adversarial tests of the window's kept lines (window.kept, copied aside rather than hashed when
// the reader moves its buffer): whatever the orderings of kept, pending, firstLen, fresh seconds,
// long lines, saves and resumes, the checkpoint's window must be what hashing every line of the
// newest second as served gives, and a resume from it must skip exactly what is stored.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/logexport/kubectl-logexport/pkg/logline"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// randReader serves src in reads of random sizes (1 to max bytes), as a network stream does, and
// breaks it after left bytes (never, if left < 0).
type randReader struct {
	src  io.Reader
	rng  *rand.Rand
	max  int
	left int
}

func (r *randReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), 1+r.rng.IntN(r.max))
	if r.left > 0 {
		n = min(n, r.left)
	}
	n, err := r.src.Read(p[:n])
	if r.left > 0 {
		r.left -= n
	}
	return n, err
}

// keptLine is one served line of a generated log: its second and its text.
type keptLine struct {
	sec  int
	text string
}

// keptCase is a generated log and the settings one run of keptRuns reads it with.
type keptCase struct {
	lines     []keptLine
	monotone  bool // no clock step back: every line is served to a resume from its second
	keep, buf int
	maxRead   int
}

func genKeptCase(rng *rand.Rand, big bool) keptCase {
	var c keptCase
	c.monotone = rng.IntN(2) == 0
	c.buf = []int{64, 64 + rng.IntN(300), 1 << 10, 4 << 10}[rng.IntN(4)]
	c.keep = []int{0, 1, rng.IntN(3000), 1 << 20}[rng.IntN(4)]
	maxLen := []int{10, 100, 400, 3000}[rng.IntN(4)]
	fixed := 0
	if rng.IntN(3) == 0 {
		// Lines of one length, and keep a multiple of it: kept fills to keep exactly.
		fixed = 1 + rng.IntN(maxLen)
		c.keep = (1 + rng.IntN(8)) * (len(served(0, strings.Repeat("x", fixed))))
	}
	n := 1 + rng.IntN(150)
	if big {
		c.buf = []int{4 << 10, 64 << 10, 256 << 10}[rng.IntN(3)]
		c.keep = []int{keepWindow, keepWindow - 1 - rng.IntN(100), 0}[rng.IntN(3)]
		maxLen = []int{200, 5000, 70 << 10}[rng.IntN(3)]
		n = 50 + rng.IntN(400)
	}
	c.maxRead = []int{1, 7, c.buf, 1 << 20}[rng.IntN(4)]
	sec := 0
	for i := range n {
		switch rng.IntN(12) {
		case 0, 1:
			sec++
		case 2:
			if !c.monotone {
				sec = max(sec-1, 0)
			}
		}
		l := fixed
		if l == 0 {
			l = rng.IntN(maxLen + 1)
		}
		// Repeated identical lines, and a counter so a mismatch shows where.
		text := strings.Repeat(string(rune('a'+rng.IntN(3))), l)
		if rng.IntN(2) == 0 && l > 8 {
			text = fmt.Sprintf("%06d", i) + text[6:]
		}
		c.lines = append(c.lines, keptLine{sec, text})
	}
	return c
}

// keptRun reads the log from the checkpoint cp on, as merge.stream does (skipper, window moved
// before each read that moves the buffer, kept and pending), and stops after line stop (a cut:
// some bytes of the next line may have been read). It checks the window against ref, the
// eager window of every line read so far, at each save (every saveEvery lines, or never) and
// at the end, and returns the checkpoint saved and the index of the next unread line.
func keptRun(rng *rand.Rand, c keptCase, cp store.Checkpoint, from int, ref *eagerWindow, stop, saveEvery int) (store.Checkpoint, int, error) {
	// What a request with sinceTime=cp.Since serves: the lines whose second is at or after it.
	var body strings.Builder
	var idx []int
	for i, l := range c.lines {
		if cp.Since.IsZero() || t0.Unix()+int64(l.sec) >= cp.Since.Unix() {
			body.WriteString(served(l.sec, l.text))
			idx = append(idx, i)
		}
	}
	r := logline.NewReader(&randReader{src: strings.NewReader(body.String()), rng: rng, max: c.maxRead, left: -1}, c.buf)
	defer r.Release()
	w := windowOf(cp)
	w.keep = c.keep
	skip := newSkipper(w, cp.Since)
	var live *window // m.live: the saved checkpoint is w's from its first line ended on
	sync := func() {
		if live != nil {
			live.fold(nil)
			live.saveTo(&cp)
		}
	}
	check := func(when string) error {
		sync()
		if ref.set && (cp.Since.Unix() != ref.since || cp.Skip != ref.skip || cp.Hash != ref.hash || cp.First != ref.first) {
			return fmt.Errorf("%s: checkpoint since %d skip %d hash %x first %x; hashing every line gives since %d skip %d hash %x first %x",
				when, cp.Since.Unix()-t0.Unix(), cp.Skip, cp.Hash, cp.First, ref.since-t0.Unix(), ref.skip, ref.hash, ref.first)
		}
		if len(w.kept) > max(w.keep, 0) {
			return fmt.Errorf("%s: %d bytes kept, more than keep (%d)", when, len(w.kept), w.keep)
		}
		return nil
	}
	skipped := 0 // stored lines read
	cutting := false
	feed := windowFeed{
		w:    &w,
		skip: skip,
		stored: func(f logline.Fragment) {
			if f.Last {
				skipped++
			}
		},
		sec: func(n int) (int64, error) {
			if idx[skipped+n] != from+n {
				return 0, fmt.Errorf("line %d served after the stored ones, want line %d (skipped %d)", idx[skipped+n], from+n, skipped)
			}
			return t0.Unix() + int64(c.lines[from+n].sec), nil
		},
		// The stream breaks inside the line after the cut: what was read of it is dropped.
		cut: func(f logline.Fragment) bool { return cutting && (f.Last || rng.IntN(3) == 0) },
		ended: func(n int, sec int64, data []byte) (bool, error) {
			w.saveTo(&cp)
			live = &w
			ref.line(sec, data)
			next := from + n + 1
			if saveEvery > 0 && (next-from)%saveEvery == 0 {
				if err := check(fmt.Sprintf("save after line %d", next)); err != nil {
					return true, err
				}
			}
			if next == stop {
				cutting = rng.IntN(2) == 0
				return !cutting, nil
			}
			return false, nil
		},
	}
	n, err := feed.run(r)
	if err != nil {
		return cp, 0, fmt.Errorf("resume from since %d skip %d: %w", cp.Since.Unix()-t0.Unix(), cp.Skip, err)
	}
	next := from + n
	if err := skip.finish(); err != nil && !cutting && next != stop {
		return cp, 0, fmt.Errorf("resume from since %d skip %d: at the end: %w", cp.Since.Unix()-t0.Unix(), cp.Skip, err)
	}
	if err := check(fmt.Sprintf("end after line %d", next)); err != nil {
		return cp, 0, err
	}
	return cp, next, nil
}

// keptResumes reads the case's log in runs cut at random lines, each resuming from the
// checkpoint the last saved, and checks that every line is read once, in order.
func keptResumes(seed uint64, big bool) error {
	rng := rand.New(rand.NewPCG(seed, 0x6b657074))
	c := genKeptCase(rng, big)
	var cp store.Checkpoint
	var ref eagerWindow
	if rng.IntN(3) == 0 {
		// Going on from a checkpoint whose window is the first second (its lines not in this
		// log: a resume of it is not checked).
		cp = store.Checkpoint{Since: time.Unix(t0.Unix(), 0).UTC(), Skip: 3, Hash: 0x1234, First: 0x99}
		ref = eagerWindow{since: t0.Unix(), set: true, skip: 3, hash: 0x1234, first: 0x99}
		w := windowOf(cp)
		w.keep = c.keep
		return keptOneRun(rng, c, w, ref)
	}
	saveEvery := []int{0, 1, 2, 1 + rng.IntN(20)}[rng.IntN(4)]
	from := 0
	for runs := 0; from < len(c.lines); runs++ {
		stop := -1
		if runs < 30 && rng.IntN(4) != 0 {
			stop = from + 1 + rng.IntN(len(c.lines)-from)
		}
		var err error
		if !c.monotone && from > 0 {
			// A clock that stepped back: the lines older than the window are not served to a
			// resume, so runs are not compared line by line; one run covers the rest.
			return nil
		}
		cp, from, err = keptRun(rng, c, cp, from, &ref, stop, saveEvery)
		if err != nil {
			return fmt.Errorf("run %d: %w", runs+1, err)
		}
	}
	return nil
}

// keptOneRun reads the whole log into w, which goes on from a checkpoint, saving now and then.
func keptOneRun(rng *rand.Rand, c keptCase, w window, ref eagerWindow) error {
	var body strings.Builder
	for _, l := range c.lines {
		body.WriteString(served(l.sec, l.text))
	}
	r := logline.NewReader(&randReader{src: strings.NewReader(body.String()), rng: rng, max: c.maxRead, left: -1}, c.buf)
	defer r.Release()
	feed := windowFeed{
		w:   &w,
		sec: func(n int) (int64, error) { return t0.Unix() + int64(c.lines[n].sec), nil },
		ended: func(n int, sec int64, data []byte) (bool, error) {
			ref.line(sec, data)
			if rng.IntN(10) == 0 || n+1 == len(c.lines) {
				w.fold(nil)
				if err := sameAsEager(&w, &ref); err != nil {
					return true, fmt.Errorf("from a checkpoint, line %d: %w", n+1, err)
				}
			}
			return false, nil
		},
	}
	_, err := feed.run(r)
	return err
}

// seedCount is how many seeds a randomized test tries: n, or short with -short.
func seedCount(n, short uint64) uint64 {
	if testing.Short() {
		return short
	}
	return n
}

// Many generated logs, read in runs cut at random lines and resumed from each run's checkpoint,
// with kept lines of none, some, up to exactly keep, or all of a second: each checkpoint is the
// eager window's, and each resume skips exactly the stored lines and goes on with the next.
// Big: with the sizes an export uses: buffers of 4, 64 and 256 KiB, keep of keepWindow or just
// below, lines up to longer than keepWindow.
func TestBreakKeptWindowResumes(t *testing.T) {
	tests := []struct {
		name         string
		big          bool
		seeds, short uint64
	}{
		{"Small", false, 4000, 500},
		{"Big", true, 60, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range seedCount(tt.seeds, tt.short) {
				if err := keptResumes(seed, tt.big); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}

// keptExport exports one container of a log server again and again: lines come between runs
// (many in one second, some longer than the buffer, some split by the runtime), the container
// restarts now and then, and most runs' log streams break at a random byte; buffer sizes and
// how often a checkpoint is saved (at every line, even) vary from run to run. Every line must
// be stored once, in order, and no gap reported.
//
// With follow, each run follows the container (its previous instance's tail, and a checkpoint's
// window, read first by streams that end) until it has written every line logged, then stops.
//
// With rotate, the log is also rotated between some runs, after all of it was stored: each
// rotation must be reported as one gap, and nothing lost.
func keptExport(t *testing.T, seed uint64, follow, rotate bool) {
	rng := rand.New(rand.NewPCG(seed, 0x6b657078))
	srv := logserver.New(t)
	defer srv.Close()
	srv.AddPod("default", "p0", "c")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	sec, nano := 0, 0
	var want strings.Builder
	var mu sync.Mutex
	cutAt := -1 // the next log response breaks after this many bytes (-1: it does not)
	maxRead := 1 << 20
	dir := t.TempDir()
	cfg := srv.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err != nil || !strings.HasSuffix(r.URL.Path, "/log") {
				return resp, err
			}
			mu.Lock()
			defer mu.Unlock()
			body := &randReader{src: resp.Body, rng: rand.New(rand.NewPCG(rng.Uint64(), 1)), max: maxRead, left: cutAt}
			resp.Body = struct {
				io.Reader
				io.Closer
			}{body, resp.Body}
			cutAt = -1
			return resp, nil
		})
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var runs, cuts, rotations int
	var gaps []Gap
	phases := 3 + rng.IntN(6)
	for phase := range phases {
		switch k := rng.IntN(5); {
		case phase == 0:
		case k == 0:
			srv.Restart("default", "p0", "c")
		case k == 1 && rotate:
			// Everything logged so far is stored: the rotation loses nothing, but a resume
			// finds the window gone and must say so, once (then goes on in after mode, the
			// window not known until a line is written).
			srv.Rotate("default", "p0", "c")
			rotations++
		}
		var entries []logserver.Entry
		var size int
		// Some phases log a few lines a second, some more than keepWindow in one.
		perSecond := []int{3, 15, 300}[rng.IntN(3)]
		for i := range 20 + rng.IntN(250) {
			if rng.IntN(perSecond) == 0 {
				sec, nano = sec+1, 0
			}
			var text string
			switch k := rng.IntN(80); {
			case k == 0:
				text = strings.Repeat("L", 60<<10+rng.IntN(150<<10))
			case k < 10:
				text = strings.Repeat("m", 1000+rng.IntN(8000))
			default:
				text = strings.Repeat(string(rune('a'+rng.IntN(2))), rng.IntN(300))
			}
			if len(text) > 10 && rng.IntN(2) == 0 {
				text = fmt.Sprintf("%d.%d.%d ", seed, phase, i) + text[10:]
			}
			want.WriteString(text + "\n")
			size += len(text)
			nano++
			at := base.Add(time.Duration(sec)*time.Second + time.Duration(nano)*time.Microsecond)
			if len(text) > 16<<10 && rng.IntN(2) == 0 {
				// The runtime splits a long line into partial entries of 16 KiB.
				for len(text) > 16<<10 {
					entries = append(entries, logserver.Entry{Time: at, Partial: true, Text: text[:16<<10]})
					text = text[16<<10:]
				}
			}
			entries = append(entries, logserver.Entry{Time: at, Text: text})
		}
		srv.Append("default", "p0", "c", entries...)
		for try := 0; ; try++ {
			if try > 60 {
				t.Fatalf("seed %d: phase %d not exported in %d runs", seed, phase, try)
			}
			opts := Options{
				BufferSize:  []int{0, 4 << 10, 64 << 10, 256 << 10, 1 << 10}[rng.IntN(5)],
				CommitBytes: []int64{0, 1, 100, 10 << 10, 100 << 10}[rng.IntN(5)],
			}
			cut := rng.IntN(3) != 0
			mu.Lock()
			cutAt = -1
			if cut {
				cutAt = rng.IntN(size + size/4 + 1)
			}
			maxRead = []int{1 << 20, 1 + rng.IntN(5000), 64 << 10}[rng.IntN(3)]
			mu.Unlock()
			d, err := store.Open(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if follow {
				opts.Follow = true
				opts.CommitInterval = []time.Duration{0, time.Millisecond, time.Hour}[rng.IntN(3)]
				need := strings.Count(want.String(), "\n") - strings.Count(readLog(t, dir, "p0", "c"), "\n")
				var written int
				opts.Metrics = writtenFunc(func(time.Time) {
					if written++; written == need {
						cancel()
					}
				})
				stuck := time.AfterFunc(30*time.Second, func() { cancel() })
				defer stuck.Stop()
			}
			e := &Exporter{Client: client, Dest: d, Options: opts}
			res := e.Export(ctx, breakTarget(t, srv, "p0", "c"))
			canceled := ctx.Err() != nil
			cancel()
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			runs++
			gaps = append(gaps, res.Gaps...)
			rotated := 0
			for _, g := range gaps {
				if strings.Contains(g.Reason, "rotated") {
					rotated++
				}
			}
			if len(gaps) > rotated || rotated > rotations {
				t.Fatalf("seed %d: phase %d run %d (buffer %d, commit every %d, cut at %d): gaps %v (err %v)",
					seed, phase, try+1, opts.BufferSize, opts.CommitBytes, cutAt, gaps, res.Err)
			}
			if res.Err == nil && !follow || follow && canceled {
				break
			}
			cuts++
			if !cut {
				t.Fatalf("seed %d: phase %d run %d failed without a cut: %v", seed, phase, try+1, res.Err)
			}
		}
		if got := readLog(t, dir, "p0", "c"); got != want.String() {
			t.Fatalf("seed %d: after phase %d (%d runs, %d cut): file of %d bytes, want %d; first difference at byte %d",
				seed, phase, runs, cuts, len(got), want.Len(), firstDiff(got, want.String()))
		}
	}
	if len(gaps) != rotations {
		t.Fatalf("seed %d: %d rotations, gaps %v", seed, rotations, gaps)
	}
	t.Logf("seed %d: %d phases, %d runs, %d cut, %d rotated, %d bytes", seed, phases, runs, cuts, rotations, want.Len())
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// End to end through Exporter.Export against the log server, resumed from runs broken at random
// bytes (see keptExport): read to the end, followed, and with rotations (a resume in after mode,
// whose window goes on from the checkpoint's second with no line (skip 0), keeps its lines too).
func TestBreakKeptExport(t *testing.T) {
	tests := []struct {
		name           string
		follow, rotate bool
		seeds, short   uint64
	}{
		{"Resumes", false, false, 12, 3},
		{"FollowResumes", true, false, 5, 2},
		{"RotatedResumes", false, true, 8, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range seedCount(tt.seeds, tt.short) {
				t.Run(fmt.Sprint(seed), func(t *testing.T) { keptExport(t, seed, tt.follow, tt.rotate) })
			}
		})
	}
}

// What a window keeps is bounded by keep in memory, not only in length: a stream holds its kept
// lines' buffer until it ends, beside the reader's. Lines copied aside a few at a time grew it
// by append, whose capacity ran to 80 KiB for a keep of 64.
func TestBreakKeptCapacity(t *testing.T) {
	for _, chunk := range []int{1, 37, 1000, 4 << 10, 5000, 30 << 10, keepWindow} {
		for _, keep := range []int{1, 100, 4 << 10, keepWindow, keepWindow + 1} {
			w := window{keep: keep}
			p := make([]byte, chunk)
			for i := range 3 * keep / chunk {
				w.pending = p
				w.stash()
				if len(w.kept) > keep || cap(w.kept) > keep {
					t.Fatalf("lines of %d bytes, keep %d: after %d, %d bytes kept in a buffer of %d", chunk, keep, i+1, len(w.kept), cap(w.kept))
				}
			}
		}
	}
}
