package export

import (
	"errors"
	"math"
	"time"
)

// errTailMiss: a stream asked for with tailLines did not serve the stored window as stored (it
// began after the window's first line, or the log rotated, or it ended early); nothing was
// written, and the log is asked for again from since alone.
var errTailMiss = errors.New("the log's tail did not hold the stored window")

// Why a tail at all: the kubelet (and kwok) finds sinceTime by reading the container's log file
// from its start, up to 10 MiB by default for every container on every run, while tailLines
// seeks from the file's end. Asked for with both, it serves the lines at or after since among
// the last tailLines entries. Where those hold the stored window as stored, the stream is what
// sinceTime alone serves from the window's first line on (the lines after it come after it in
// the file), and everything before that line is older than since or the untimestamped tail of
// a line that began before since, which a stream from since alone serves as well (see
// skipper). Where they do not, nothing is lost: the skipper tells, before a line is written.

const (
	// tailMargin is added to the estimate: bursts, and a clock that runs ahead of the node's.
	tailMargin = 256
	// criEntry is the longest entry a runtime writes (containerd and CRI-O split longer lines
	// into partial entries, each counted by tailLines).
	criEntry = 16 << 10
)

// tailLines is how many entries of in's log to ask for, at now, to get the stored window and
// what came after it: twice what the stored log's mean rate gives since the window's second,
// plus the window and a margin. Where that is all the stored log, the mean rate says little (a
// log written in bursts, a batch job, a service mostly idle): then an eighth of it, since a miss
// costs the node a read of that many entries, and a hit saves it reading the rest. 0 (the
// whole log from since) where there is no window to check the tail against, or where the tail
// would be about as long as the stored log.
func (m *merge) tailLines(in *instance, since time.Time, after *time.Time, now time.Time) int64 {
	cp := m.cp
	if m.Follow || m.ResumeTail < 0 || after != nil || cp.After || cp.Skip == 0 || cp.First == 0 || since.IsZero() ||
		!since.Equal(cp.Since) || in.id != cp.Instance {
		return 0
	}
	if m.ResumeTail > 0 {
		return m.ResumeTail
	}
	if cp.Begin.IsZero() || cp.Lines == 0 {
		return 0
	}
	if !in.finished.IsZero() && in.finished.Before(now) {
		now = in.finished
	}
	// entries: at least as many as the stored lines, and a line longer than an entry is more.
	entries := max(float64(cp.Lines), float64(cp.Size)/criEntry)
	perSecond := entries / max(cp.Last.Sub(cp.Begin).Seconds(), 1)
	elapsed := max(now.Sub(since).Seconds(), 0) + 1
	least := float64(cp.Skip) + tailMargin
	n := least + 2*perSecond*elapsed
	if n >= entries {
		n = max(least, entries/8)
	}
	if n >= entries || n > math.MaxInt32 {
		return 0
	}
	return int64(n)
}
