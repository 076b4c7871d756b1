package export

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/logline"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// served is one line as the API serves it with timestamps=true.
func served(sec int, text string) string {
	return t0.Add(time.Duration(sec)*time.Second).Format("2006-01-02T15:04:05.000000000Z07:00") + " " + text + "\n"
}

// windowAfter accounts lines (second, served text) into a window, as an export reads them: one
// after the other in one buffer, each one fragment. The window it returns is folded.
func windowAfter(w window, lines ...string) window {
	buf := []byte(strings.Join(lines, ""))
	for _, l := range lines {
		ts, _, err := logline.ParseTimestamp([]byte(l))
		if err != nil {
			panic(err)
		}
		var wl windowLine
		w.begin(&wl, ts.Unix())
		w.add(&wl, buf[:len(l)])
		buf = buf[len(l):]
		w.end(&wl)
	}
	w.fold(nil)
	return w
}

// sameWindow compares what a folded window saves.
func sameWindow(a, b window) bool {
	var ca, cb store.Checkpoint
	a.saveTo(&ca)
	b.saveTo(&cb)
	return ca == cb && a.pending == nil && b.pending == nil && a.firstLen == 0 && b.firstLen == 0
}

func TestWindow(t *testing.T) {
	sec := func(s int) time.Time { return time.Unix(t0.Unix()+int64(s), 0).UTC() }
	h := func(lines ...string) store.Hash { return store.NewHash().Add([]byte(strings.Join(lines, ""))) }
	tests := []struct {
		name  string
		lines []string
		want  window
	}{
		{"empty", nil, window{}},
		{"one line", []string{served(0, "a")}, window{since: sec(0), skip: 1, hash: h(served(0, "a")), first: h(served(0, "a"))}},
		{"same second: the window grows", []string{served(0, "a"), served(0, "a")},
			window{since: sec(0), skip: 2, hash: h(served(0, "a"), served(0, "a")), first: h(served(0, "a"))}},
		{"a newer second starts a new window", []string{served(0, "a"), served(1, "b"), served(1, "c")},
			window{since: sec(1), skip: 2, hash: h(served(1, "b"), served(1, "c")), first: h(served(1, "b"))}},
		{"a line of an older second is not served to a resume", []string{served(3, "a"), served(2, "back")},
			window{since: sec(3), skip: 1, hash: h(served(3, "a")), first: h(served(3, "a"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := windowAfter(window{}, tt.lines...); !sameWindow(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSkipper(t *testing.T) {
	stored := windowAfter(window{}, served(0, "x"), served(1, "a"), served(1, "b"))
	tests := []struct {
		name   string
		w      window
		since  bool
		stream []string // served lines; a line without a newline ends the stream unterminated
		// skipped is how many of the stream's lines are already stored.
		skipped int
		err     error
	}{
		{"nothing stored, no since", window{}, false, []string{served(0, "a")}, 0, nil},
		{"the window, then new lines", stored, true, []string{served(1, "a"), served(1, "b"), served(1, "c")}, 2, nil},
		{"a leading tail, then the window", stored, true, []string{"tail of a long line\n", served(1, "a"), served(1, "b"), served(2, "c")}, 3, nil},
		{"a tail that parses as a timestamp", stored, true, []string{"2024-01-01T10:00:01Z lookalike\n", served(1, "a"), served(1, "b")}, 3, nil},
		{"a whole served line that is not the window's first: rotated at once", stored, true, []string{served(1, "new")}, 0, errRotated},
		{"a tail with no window: dropped", window{}, true, []string{"tail\n", served(1, "a")}, 1, nil},
		{"a tail with no window that parses as a timestamp: dropped", window{}, true, []string{"2099-01-01T00:00:00Z expires\n", served(1, "a")}, 1, nil},
		{"a tail with no window that looks served but is older than since: dropped", window{}, true, []string{served(0, "old"), served(1, "a")}, 1, nil},
		{"no tail and no window", window{}, true, []string{served(1, "a")}, 0, nil},
		{"changed lines: rotated", stored, true, []string{served(1, "a"), served(1, "B")}, 0, errRotated},
		{"fewer lines: ended short, at its first line's end", stored, true, []string{served(1, "a")}, 0,
			&shortEnd{bytes: int64(len(served(1, "a"))), hash: store.NewHash().Add([]byte(served(1, "a")))}},
		{"fewer lines: ended short, inside a line", stored, true, []string{"tai"}, 0, &shortEnd{bytes: 3, hash: store.NewHash().Add([]byte("tai"))}},
		{"fewer lines: ended short, before a byte", stored, true, nil, 0, &shortEnd{}},
		{"a tail, then another line: rotated", stored, true, []string{"tail\n", served(1, "other"), served(1, "b")}, 0, errRotated},
		// The kubelet starts a line's timestamp only after an entry that ended a line, whatever
		// the stream: a stdout line and a stderr line both begun before since are two tails.
		{"two tails, then the window", stored, true, []string{"tail\n", "tail\n", served(1, "a"), served(1, "b"), served(1, "c")}, 4, nil},
		{"two tails with no window", window{}, true, []string{"tail\n", "tail\n", served(1, "a")}, 2, nil},
		{"two tails, then another line: rotated", stored, true, []string{"tail\n", "tail\n", served(1, "other")}, 0, errRotated},
		{"an older checkpoint without first: a tail is what has no timestamp", window{since: stored.since, skip: 2, hash: stored.hash},
			true, []string{"tail\n", served(1, "a"), served(1, "b")}, 3, nil},
		{"the window's last line unterminated (a finished container)", windowAfter(window{}, strings.TrimSuffix(served(1, "x"), "\n")), true,
			[]string{served(1, "x")[:len(served(1, "x"))-1]}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var since time.Time
			if tt.since {
				since = t0.Add(time.Second)
			}
			s := newSkipper(tt.w, since)
			r := logline.NewReader(strings.NewReader(strings.Join(tt.stream, "")), 16)
			var lines int
			var err error
			var last logline.Fragment
			lastStored, fresh := false, false
			for {
				f, rerr := r.Next()
				if rerr == io.EOF {
					if lastStored && !last.Last {
						lines++ // an unterminated line, stored whole
					}
					err = s.finish()
					break
				}
				var stored bool
				if stored, err = s.feed(f); err != nil {
					break
				}
				if stored && fresh {
					t.Fatalf("a stored fragment after a new one: %q", f.Data)
				}
				fresh = fresh || !stored
				if stored && f.Last {
					lines++
				}
				last, lastStored = logline.Fragment{Last: f.Last}, stored
			}
			if want, ok := tt.err.(*shortEnd); ok {
				// Two ends are the same place only if bytes and hash are.
				if got, ok := err.(*shortEnd); !ok || *got != *want {
					t.Fatalf("err %#v, want %#v", err, want)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if tt.err == nil && lines != tt.skipped {
				t.Fatalf("skipped %d lines, want %d", lines, tt.skipped)
			}
		})
	}
}

// eagerWindow is the window as it was before its hash waited for the reader: every line of the
// newest second hashed as it comes.
type eagerWindow struct {
	since       int64
	set         bool
	skip        int64
	hash, first store.Hash
}

func (e *eagerWindow) line(sec int64, data []byte) {
	fresh := !e.set || sec > e.since
	if !fresh && sec != e.since {
		return
	}
	if fresh {
		e.since, e.set, e.skip, e.hash = sec, true, 0, 0
	}
	e.skip++
	e.hash = e.hash.Add(data)
	if e.skip == 1 {
		e.first = e.hash
	}
}

// windowFeed reads a log into a window as merge.stream does: before each read that moves the
// reader's buffer the window moves (keeps or hashes what it has of that buffer), each fragment
// goes to the skipper first (if any), and the others are added to the line begun at its first
// fragment. The tests that check the window against the eager one read through it, so that the
// loop they check is one, and the production loop's. Lines are numbered from 0 in the order
// read, stored ones left out.
type windowFeed struct {
	w    *window
	skip *skipper // nil: nothing is stored
	// sec gives line n's second, at its first fragment; an error stops the read.
	sec func(n int) (int64, error)
	// stored, if set, is told of each fragment the skipper found stored.
	stored func(f logline.Fragment)
	// cut, if set, says after each fragment is added whether the stream breaks there: the read
	// stops, the fragment's line not ended.
	cut func(f logline.Fragment) bool
	// ended is told of each line ended, with its second and its bytes as served; stop (or an
	// error) stops the read.
	ended func(n int, sec int64, data []byte) (stop bool, err error)
}

// run reads r until its end or a stop, and returns how many lines it ended.
func (d *windowFeed) run(r *logline.Reader) (int, error) {
	var line windowLine
	var data []byte
	var sec int64
	n := 0
	for {
		if !r.Ready() {
			d.w.move(&line)
		}
		f, err := r.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if d.skip != nil {
			stored, err := d.skip.feed(f)
			if err != nil {
				return n, err
			}
			if stored {
				if d.stored != nil {
					d.stored(f)
				}
				continue
			}
		}
		if f.First {
			if sec, err = d.sec(n); err != nil {
				return n, err
			}
			d.w.begin(&line, sec)
			data = nil
		}
		d.w.add(&line, f.Data)
		data = append(data, f.Data...)
		if d.cut != nil && d.cut(f) {
			return n, nil
		}
		if !f.Last {
			continue
		}
		d.w.end(&line)
		n++
		if stop, err := d.ended(n-1, sec, data); stop || err != nil {
			return n, err
		}
	}
}

// sameAsEager says how the folded window w differs from ref, if it does.
func sameAsEager(w *window, ref *eagerWindow) error {
	if w.hash != ref.hash || w.first != ref.first || w.skip != ref.skip || w.since.Unix() != ref.since {
		return fmt.Errorf("window %+v, hashing every line gives %+v", *w, *ref)
	}
	return nil
}

// The window's hashes are those of hashing every line as it comes, however the stream is read:
// lines of any length (some longer than the reader's buffer, so in fragments), reads of any size
// (the reader moves its bytes when it must), a clock that steps back, the window saved (folded)
// at any line, a window that goes on from a checkpoint's, and lines kept unhashed when the reader
// moves them (none, some, all).
func TestWindowLazyHash(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var stream strings.Builder
		var secs []int64
		sec := 0
		for range 1 + rng.IntN(120) {
			switch rng.IntN(10) {
			case 0:
				sec++
			case 1:
				sec = max(sec-1, 0)
			}
			text := strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN([]int{20, 200}[rng.IntN(2)]))
			stream.WriteString(served(sec, text))
			secs = append(secs, t0.Unix()+int64(sec))
		}
		var w window
		var ref eagerWindow
		if rng.IntN(2) == 0 {
			// Going on from a checkpoint whose window is the first second.
			ref = eagerWindow{since: t0.Unix(), set: true, skip: 3, hash: 0x1234, first: 0x99}
			w = window{since: time.Unix(t0.Unix(), 0).UTC(), skip: 3, hash: 0x1234, first: 0x99}
		}
		w.keep = []int{0, 150, 1 << 20}[rng.IntN(3)]
		var src io.Reader = strings.NewReader(stream.String())
		if rng.IntN(2) == 0 {
			src = iotest.HalfReader(src)
		}
		r := logline.NewReader(src, 64+rng.IntN(200))
		feed := windowFeed{
			w:   &w,
			sec: func(n int) (int64, error) { return secs[n], nil },
			ended: func(n int, sec int64, data []byte) (bool, error) {
				ref.line(sec, data)
				if rng.IntN(20) == 0 {
					w.fold(nil)
					if err := sameAsEager(&w, &ref); err != nil {
						return true, fmt.Errorf("line %d: %w", n+1, err)
					}
				}
				return false, nil
			},
		}
		if _, err := feed.run(r); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		w.fold(nil)
		if err := sameAsEager(&w, &ref); err != nil {
			t.Fatalf("seed %d, at the end: %v", seed, err)
		}
	}
}
