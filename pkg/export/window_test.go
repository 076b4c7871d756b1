package export

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/logline"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// served is one line as the API serves it with timestamps=true.
func served(sec int, text string) string {
	return t0.Add(time.Duration(sec)*time.Second).Format("2006-01-02T15:04:05.000000000Z07:00") + " " + text + "\n"
}

// windowAfter accounts lines (second, served text) into a window, as an export writes them.
func windowAfter(w window, lines ...string) window {
	for _, l := range lines {
		ts, _, err := logline.ParseTimestamp([]byte(l))
		if err != nil {
			panic(err)
		}
		wl := w.begin(ts.Unix())
		wl.add([]byte(l))
		w.end(wl)
	}
	return w
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
			if got := windowAfter(window{}, tt.lines...); got != tt.want {
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
		{"fewer lines: rotated", stored, true, []string{served(1, "a")}, 0, errRotated},
		{"a tail, then another line: rotated", stored, true, []string{"tail\n", served(1, "other"), served(1, "b")}, 0, errRotated},
		{"only one tail is allowed", stored, true, []string{"tail\n", "tail\n", served(1, "a"), served(1, "b")}, 0, errRotated},
		{"an older checkpoint without first: a tail is what has no timestamp", window{since: stored.since, skip: 2, hash: stored.hash},
			true, []string{"tail\n", served(1, "a"), served(1, "b")}, 3, nil},
		{"the window's last line unterminated (a finished container)", windowAfter(window{}, strings.TrimSuffix(served(0, "x"), "\n")), true,
			[]string{served(0, "x")[:len(served(0, "x"))-1]}, 1, nil},
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
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if tt.err == nil && lines != tt.skipped {
				t.Fatalf("skipped %d lines, want %d", lines, tt.skipped)
			}
		})
	}
}
