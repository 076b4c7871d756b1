package export

import (
	"errors"
	"math"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/logline"
)

// errTailMiss: a stream asked for with tailLines did not serve the stored window as stored (it
// began after the window's first line, or the log rotated, or it ended early); nothing was
// written, and the log is asked for again from since alone.
var errTailMiss = errors.New("the log's tail did not hold the stored window")

// Why a tail at all: the kubelet (and kwok) finds sinceTime by reading the container's log file
// from its start, up to 10 MiB by default for every container on every run, while tailLines
// seeks from the file's end. But a tail may begin anywhere: inside the stored window (whose lines
// may repeat, timestamps included, so that its content alone does not tell where it begins), or
// at a partial entry, which the kubelet prefixes with a timestamp as if it began a line (it
// starts every read as at a line's start). So the tail is asked for without sinceTime, and kept
// only if its first line is more than a second older than since: the entries before it are then
// older than since (a line logged after another is timestamped at most a second before it:
// stdout and stderr, each stamped as the runtime reads it). From there on the kubelet serves
// every entry as a read of the whole file does; the lines older than since are dropped here (see
// tailFilter), and what is left is what sinceTime=since serves but for a leading untimestamped
// tail, which the skipper does not need. Then the skipper must still find the stored window as
// stored: a clock that stepped back by more than a second before the tail's start is a miss too.
// A miss writes nothing, and the log is asked for from since alone. What the tail costs is the
// lines before the stored window it serves: about as many as are new, and the margin.
//
// Only a running container's current log is read so: the kubelet's tail never serves a last
// entry without a newline (the runtime died writing it), which a stopped container's read must
// store completed, and a stopped container's log is read to its end once or twice, then never.
// A follower's streams resume so too: each is opened again at every reconnect interval and turn,
// and a thousand followed containers would otherwise have their nodes read a thousand files from
// the start every few minutes.

const (
	// tailMargin is added to the estimate: bursts, a clock that runs ahead of the node's, and
	// lines before the window to show where the tail begins.
	tailMargin = 64
	// criEntry is the longest entry a runtime writes (containerd and CRI-O split longer lines
	// into partial entries, each counted by tailLines).
	criEntry = 16 << 10
	// tailShare: a tail longer than this share of the stored log costs more than having the
	// node find since. A line served costs kwok about 14 times a line it reads past to find
	// since (cri-client's reader, as a kubelet's), and the API server and the client as much
	// again (docs/performance.md, "A follower's reconnects from the tail"); what a tail serves
	// beyond the new lines is its slack.
	tailShare = 16
	// drainTail bounds what is read of a tail that missed before it is closed: an HTTP/1.1
	// response closed unread closes its connection, and the request from since that follows
	// would dial and handshake a new one.
	drainTail = 64 << 10
	// drainWait bounds how long draining takes: a node serves 64 KiB in milliseconds.
	drainWait = 100 * time.Millisecond
)

// tailLines is how many entries of in's log to ask for, at now, to get the stored window and
// what came after it: twice what the stored log's mean rate gives since the window's second,
// plus the window and a margin. Where that is more than a tailShare of the stored log, the mean
// rate says little (a log written in bursts, a batch job, a service mostly idle), or the tail's
// slack would cost more than finding since: then a 32nd of it, betting that little is new, which
// a miss costs the node to read and a hit the connection to carry. 0 (the whole log from since)
// where there is no window to check the tail against, or where even that is more than a
// tailShare of the stored log.
func (m *merge) tailLines(in *instance, since time.Time, after *time.Time, now time.Time) int64 {
	cp := m.cp
	if m.ResumeTail < 0 || !in.running || in.previous || after != nil || cp.After || cp.Skip == 0 || cp.First == 0 || since.IsZero() ||
		!since.Equal(cp.Since) || in.id != cp.Instance {
		return 0
	}
	if m.ResumeTail > 0 {
		return m.ResumeTail
	}
	if cp.Begin.IsZero() || cp.Lines == 0 {
		return 0
	}
	// entries: at least as many as the stored lines, and a line longer than an entry is more.
	entries := max(float64(cp.Lines), float64(cp.Size)/criEntry)
	perSecond := entries / max(cp.Last.Sub(cp.Begin).Seconds(), 1)
	elapsed := max(now.Sub(since).Seconds(), 0) + 1
	least := float64(cp.Skip) + tailMargin
	n := least + 2*perSecond*elapsed
	if n > entries/tailShare {
		n = max(least, entries/32)
	}
	if n > entries/tailShare || n > math.MaxInt32 {
		return 0
	}
	return int64(n)
}

// tailFilter drops from a tail what a stream from since does not serve, and checks that the
// tail began early enough.
type tailFilter struct {
	since              time.Time
	anchored, dropping bool
}

// feed tells whether the fragment is dropped; errTailMiss if the tail serves a line no older
// than a second before since first.
func (t *tailFilter) feed(f logline.Fragment) (bool, error) {
	if !f.First {
		return t.dropping, nil
	}
	ts, ok := stamped(f.Data)
	switch {
	case !ok && !t.anchored:
		return false, errTailMiss
	case !ok:
		// A line whose start the kubelet served without a timestamp: passed on as a stream
		// from since would serve it, if it served it at all.
		t.dropping = false
	case !t.anchored && !ts.Before(t.since.Add(-time.Second)):
		return false, errTailMiss
	default:
		t.anchored, t.dropping = true, ts.Before(t.since)
	}
	return t.dropping, nil
}
