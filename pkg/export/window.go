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
	// pending are the window's newest lines, not in hash yet: they lie one after the other in
	// the reader's buffer, and are hashed in one go (fold) before the reader moves them or when
	// the window is saved. A second's lines are hashed only if the window is still theirs then,
	// so most lines of a long log never are. firstLen, if not zero, is the length of the
	// window's first line at the start of pending, whose hash is first.
	pending  []byte
	firstLen int
	// kept are pending lines older than pending, copied out of the reader's buffer before it
	// moved them (see move): copying costs a tenth of hashing, and most seconds end, and their
	// lines are dropped unhashed, before the window is saved. At most keep bytes (0: hashed
	// then, as a follower's windows are, which wait long and must hold little).
	kept []byte
	keep int
}

func windowOf(cp store.Checkpoint) window {
	return window{since: cp.Since, skip: cp.Skip, hash: cp.Hash, first: cp.First, after: cp.After}
}

// saveTo copies the window to cp; hash and first only as far as they are folded.
func (w *window) saveTo(cp *store.Checkpoint) {
	cp.Since, cp.Skip, cp.Hash, cp.First, cp.After = w.since, w.skip, w.hash, w.first, w.after
}

// fold hashes the kept and pending lines, and the line being read if it waits in the reader's
// buffer.
func (w *window) fold(l *windowLine) {
	if l != nil && l.open && l.data != nil {
		l.hashData(w)
	}
	w.foldBytes(w.kept)
	w.foldBytes(w.pending)
	w.kept, w.pending = w.kept[:0], nil
}

// foldBytes hashes the window's next lines, p; the first firstLen bytes are the window's first
// line (whole lines are kept, so the first is never split between kept and pending).
func (w *window) foldBytes(p []byte) {
	if w.firstLen > 0 && len(p) > 0 {
		w.first = w.hash.Add(p[:w.firstLen])
		w.hash, p, w.firstLen = w.first, p[w.firstLen:], 0
	}
	w.hash = w.hash.Add(p)
}

// move is called before the reader moves the bytes it handed out: what the window has of them
// is kept (copied) if there is room, hashed otherwise.
func (w *window) move(l *windowLine) {
	if l != nil && l.open && l.data != nil {
		l.hashData(w)
	}
	w.stash()
}

// stash empties pending into kept, or folds if kept would grow beyond keep.
func (w *window) stash() {
	if len(w.pending) == 0 {
		return
	}
	n := len(w.kept) + len(w.pending)
	if n > w.keep {
		w.fold(nil)
		return
	}
	if n > cap(w.kept) {
		// Grown here rather than by append, whose capacity would run past keep (to 80 KiB for
		// 64), held until the stream ends; doubling, as small logs keep little.
		kept := make([]byte, len(w.kept), min(max(n, 2*cap(w.kept)), w.keep))
		copy(kept, w.kept)
		w.kept = kept
	}
	w.kept, w.pending = append(w.kept, w.pending...), nil
}

// addPending adds a window line, hashed later if it follows the pending ones in the buffer.
func (w *window) addPending(p []byte) {
	if n := len(w.pending); n > 0 && n+len(p) <= cap(w.pending) && &w.pending[:n+1][n] == &p[0] {
		w.pending = w.pending[:n+len(p)]
		return
	}
	w.stash()
	w.pending = p
}

// windowLine accounts one served line while it is read.
type windowLine struct {
	sec int64
	// in: the line is served again to a resume from the window's second (or a newer one);
	// fresh: it starts a newer second, and so a new window.
	in, fresh bool
	// open: the line is being read.
	open bool
	// data is the line while it is one fragment in the reader's buffer. Once it is longer, or
	// the reader is about to move it, it is hashed (hashed is set): hash is then the window's
	// hash (nothing for a fresh line) extended with the line so far.
	data   []byte
	hashed bool
	hash   store.Hash
}

// begin starts l as a line whose first entry is at sec. A line older than the window's second
// (a clock that stepped back) is not served to a resume, so it is not counted. l is set in
// place (and begin is small enough to be inlined): a windowLine returned by value and copied
// cost a store-forwarding stall on every line.
func (w *window) begin(l *windowLine, sec int64) {
	since := w.since.Unix()
	fresh := sec > since || w.since.IsZero()
	*l = windowLine{sec: sec, open: true, fresh: fresh, in: fresh || sec == since}
}

// add extends the line with served bytes. Small enough to be inlined for a line's first
// fragment, which most lines are whole.
func (w *window) add(l *windowLine, p []byte) {
	if l.in && (l.hashed || l.data != nil) {
		w.addMore(l, p)
	} else if l.in {
		l.data = p
	}
}

// addMore extends a line that has bytes already.
func (w *window) addMore(l *windowLine, p []byte) {
	if !l.hashed {
		l.hashData(w)
	}
	l.hash = l.hash.Add(p)
}

// hashData hashes what the line kept of the reader's buffer.
func (l *windowLine) hashData(w *window) {
	if !l.fresh {
		w.fold(nil)
		l.hash = w.hash
	}
	l.hash, l.data, l.hashed = l.hash.Add(l.data), nil, true
}

// end takes the complete line into the window.
func (w *window) end(l *windowLine) {
	l.open = false
	if !l.in {
		return
	}
	if l.fresh {
		w.since, w.skip = time.Unix(l.sec, 0).UTC(), 0
		// The older window's lines that wait are never hashed.
		w.hash, w.pending, w.kept, w.firstLen = 0, nil, w.kept[:0], 0
	}
	w.skip++
	w.after = false
	switch {
	case l.hashed:
		// l.hash goes on from the window's whole hash (hashData folded it), or from none.
		w.hash, w.pending, w.kept, w.firstLen = l.hash, nil, w.kept[:0], 0
		if w.skip == 1 {
			// A new window starts from the empty hash, so the running hash of its first line
			// is that line's own.
			w.first = l.hash
		}
	case w.skip == 1:
		w.fold(nil)
		w.pending, w.firstLen = l.data, len(l.data)
	default:
		w.addPending(l.data)
	}
}

// skipper checks the start of a stream asked for with sinceTime=w.since against the window: the
// stream must serve the window's skip lines exactly as they were stored, and may serve before
// and between them the untimestamped tails of lines whose first entries are older than since
// (the kubelet keeps track of line starts in the entries it skips), which it skips. Everything
// it consumes is already stored.
type skipper struct {
	w window
	// fragment: the stream may serve tails (it was asked for with sinceTime=since).
	fragment bool
	since    time.Time
	served   int64 // window lines read so far
	hash     store.Hash
	// line: the state of the line being read; tail marks one that is a tail.
	inLine, tail, done bool
	// bytes counts what it was fed, tails included, and fed is their hash.
	bytes int64
	fed   store.Hash
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
	s.bytes, s.fed = s.bytes+int64(len(f.Data)), s.fed.Add(f.Data)
	if f.First {
		s.inLine = true
		if s.fragment && !servedLine(f.Data, s.since) {
			// The untimestamped tail of a line whose first entry is older than since: before
			// the window, or between its lines (stdout's and stderr's entries, stamped each as
			// the runtime reads it, straddle the second). Never one of the window's lines.
			s.tail = true
		} else if s.w.skip == 0 {
			s.done = true
			return false, nil
		}
	}
	if s.tail {
		if f.Last {
			s.tail, s.inLine = false, false
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
		return true, errRotated
	}
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

// finish is called at the end of the stream: one that served fewer lines than stored, each as
// stored, returns *shortEnd. A finished container's last line, stored with a newline added, is
// served without one.
func (s *skipper) finish() error {
	if s.done || s.w.skip == 0 {
		return nil
	}
	if s.inLine && !s.tail && s.served+1 == s.w.skip && s.hash == s.w.hash {
		s.done = true
		return nil
	}
	return &shortEnd{bytes: s.bytes, hash: s.fed}
}

// shortEnd: a stream ended inside the stored window, after serving a part of it as stored (bytes
// long, with hash over them). Either the log is shorter now (rotated, or replaced by another
// instance's), or the response was cut short: the API server ends a response normally when its
// copy from the kubelet breaks off. Only a second stream that ends at the same byte tells.
type shortEnd struct {
	bytes int64
	hash  store.Hash
}

func (e *shortEnd) Error() string { return "the log's response ended inside the lines already stored" }

// servedLine tells whether p starts as a line the API serves with sinceTime=since: with the
// timestamp the kubelet writes (RFC3339 with exactly nine fractional digits) of since's second
// or later. A log's own text rarely has that shape, which is what tells a line from the tail of
// one that began before since.
func servedLine(p []byte, since time.Time) bool {
	ts, ok := stamped(p)
	return ok && ts.Unix() >= since.Unix()
}

// stamped returns the timestamp p starts with if it has the kubelet's shape (see servedLine).
func stamped(p []byte) (time.Time, bool) {
	if !bytes.HasPrefix(p, []byte("1")) && !bytes.HasPrefix(p, []byte("2")) {
		return time.Time{}, false // the common case, cheaply
	}
	ts, at, err := logline.ParseTimestamp(p)
	if err != nil {
		return time.Time{}, false
	}
	n := at - 1 // the timestamp's length
	return ts, len(p) > 29 && p[19] == '.' && (n == 30 && p[29] == 'Z' || n == 35 && (p[29] == '+' || p[29] == '-'))
}
