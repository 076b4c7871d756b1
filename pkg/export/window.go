package export

import (
	"bytes"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/logline"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// window is what a resume must skip. The API's sinceTime has second precision and is inclusive,
// and the kubelet filters each CRI entry on its own timestamp, so the lines of one container
// instance served with sinceTime=since are those whose first entry is at or after since. The
// stored ones among them are exactly the first skip; hash covers them as served (timestamp
// prefix included) and first covers the first of them alone.
//
// A line belongs to the window of the second of its first entry: a long line the runtime split
// into partial entries is served whole when its first entry is, and otherwise only as an
// untimestamped tail (see skipper), which is never counted.
type window struct {
	since       time.Time // a whole second; zero before the first line
	skip        int64
	hash, first store.Hash
	// after: the window is not known (see store.Checkpoint.After); it is again once a line ends
	// in it.
	after bool
}

func windowOf(cp store.Checkpoint) window {
	return window{since: cp.Since, skip: cp.Skip, hash: cp.Hash, first: cp.First, after: cp.After}
}

func (w window) saveTo(cp *store.Checkpoint) {
	cp.Since, cp.Skip, cp.Hash, cp.First, cp.After = w.since, w.skip, w.hash, w.first, w.after
}

// windowLine accounts one served line while it is read.
type windowLine struct {
	sec int64
	// in: the line is served again to a resume from the window's second (or a newer one);
	// fresh: it starts a newer second, and so a new window.
	in, fresh bool
	hash      store.Hash
}

// begin starts a line whose first entry is at sec. A line older than the window's second
// (a clock that stepped back) is not served to a resume, so it is not counted.
func (w window) begin(sec int64) windowLine {
	l := windowLine{sec: sec}
	l.fresh = w.since.IsZero() || sec > w.since.Unix()
	l.in = l.fresh || sec == w.since.Unix()
	if !l.fresh {
		l.hash = w.hash
	}
	return l
}

// add extends the line with served bytes.
func (l *windowLine) add(p []byte) {
	if l.in {
		l.hash = l.hash.Add(p)
	}
}

// end takes the complete line into the window.
func (w *window) end(l windowLine) {
	if !l.in {
		return
	}
	if l.fresh {
		w.since, w.skip = time.Unix(l.sec, 0).UTC(), 0
	}
	w.skip++
	w.hash = l.hash
	w.after = false
	if w.skip == 1 {
		// A new window starts from the empty hash, so the running hash of its first line is
		// that line's own.
		w.first = l.hash
	}
}

// skipper checks the start of a stream asked for with sinceTime=w.since against the window: the
// stream may begin with the untimestamped tail of a line whose first entries are older than
// since (the reader keeps track of line starts in the entries it skips), then must serve the
// window's skip lines exactly as they were stored. Everything it consumes is already stored.
type skipper struct {
	w window
	// fragment: the stream may begin with a tail (it was asked for with sinceTime=since).
	fragment bool
	since    time.Time
	served   int64 // window lines read so far
	hash     store.Hash
	// line: the state of the line being read; tail marks one that is the leading tail, and
	// looksServed one that starts as a served line does.
	inLine, tail, looksServed, done bool
}

func newSkipper(w window, since time.Time) *skipper {
	s := &skipper{w: w, fragment: !since.IsZero(), since: since}
	s.done = w.skip == 0 && since.IsZero()
	return s
}

// feed takes the next fragment of the stream and tells whether it is already stored (consumed).
// A mismatch returns errRotated: the stored lines are no longer served as they were.
func (s *skipper) feed(f logline.Fragment) (bool, error) {
	if s.done {
		return false, nil
	}
	if f.First {
		s.inLine = true
		if s.fragment && s.served == 0 {
			s.looksServed = servedLine(f.Data, s.since)
		}
		if s.fragment && s.served == 0 && s.w.first == 0 {
			// Without a stored first-line hash (a checkpoint of an older version, or no window),
			// a tail is what does not start as a served line does.
			if !servedLine(f.Data, s.since) {
				s.tail = true
			} else if s.w.skip == 0 {
				s.done = true
				return false, nil
			}
		}
	}
	if s.tail {
		if f.Last {
			s.tail, s.inLine, s.fragment = false, false, false
			s.done = s.w.skip == 0
		}
		return true, nil
	}
	s.hash = s.hash.Add(f.Data)
	if !f.Last {
		return true, nil
	}
	s.inLine = false
	s.served++
	if s.served == 1 && s.w.first != 0 && s.hash != s.w.first {
		// A whole served line that is not the window's first: the window is gone. Deciding
		// now, rather than on the next line, matters to a followed stream that may wait long.
		if !s.fragment || s.looksServed {
			return true, errRotated
		}
		// Not the window's first line: the leading tail of a line that began before since.
		s.fragment, s.served, s.hash = false, 0, 0
		return true, nil
	}
	s.fragment = false
	if s.served == s.w.skip {
		if s.hash != s.w.hash {
			return true, errRotated
		}
		s.done = true
	}
	return true, nil
}

// matched tells whether the stream served the window, a line or more, as stored.
func (s *skipper) matched() bool { return s.done && s.w.skip > 0 }

// finish is called at the end of the stream: fewer lines than stored means they are gone. A
// finished container's last line, stored with a newline added, is served without one.
func (s *skipper) finish() error {
	if s.done || s.w.skip == 0 {
		return nil
	}
	if s.inLine && !s.tail && s.served+1 == s.w.skip && s.hash == s.w.hash {
		s.done = true
		return nil
	}
	return errRotated
}

// servedLine tells whether p starts as a line the API serves with sinceTime=since: with the
// timestamp the kubelet writes (RFC3339 with exactly nine fractional digits) of since's second
// or later. A log's own text rarely has that shape, which is what tells a line from the tail of
// one that began before since.
func servedLine(p []byte, since time.Time) bool {
	if !bytes.HasPrefix(p, []byte("1")) && !bytes.HasPrefix(p, []byte("2")) {
		return false // the common case, cheaply
	}
	ts, at, err := logline.ParseTimestamp(p)
	if err != nil || ts.Unix() < since.Unix() {
		return false
	}
	n := at - 1 // the timestamp's length
	return len(p) > 29 && p[19] == '.' && (n == 30 && p[29] == 'Z' || n == 35 && (p[29] == '+' || p[29] == '-'))
}
