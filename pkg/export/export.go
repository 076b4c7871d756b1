// Package export merges container logs served by the Kubernetes API into an export directory:
// each run appends exactly the lines that are not stored yet, container instance by instance.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/logexport/kubectl-logexport/pkg/logline"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// Gap is a stretch of a log that could not be exported.
type Gap struct {
	// From is zero when the start is unknown. A gap after stored lines starts at the second of
	// the newest (see gapFrom).
	From   time.Time  `json:"from"`
	To     *time.Time `json:"to,omitempty"`
	Reason string     `json:"reason"`
}

func (g Gap) String() string {
	to := "now"
	if g.To != nil {
		to = g.To.UTC().Format(time.RFC3339Nano)
	}
	if g.From.IsZero() {
		return fmt.Sprintf("gap up to %s: %s", to, g.Reason)
	}
	return fmt.Sprintf("gap from %s to %s: %s", g.From.UTC().Format(time.RFC3339Nano), to, g.Reason)
}

// Result is what one export of one container did.
type Result struct {
	target.Target
	File  string
	Lines int64
	Bytes int64
	Gaps  []Gap
	// Skipped says why nothing was exported, if so (a container that has not started yet).
	Skipped string
	// Complete: the current instance is not running and its log is stored to its end, so it
	// cannot serve anything new until the container starts again.
	Complete bool
	// Confirm: the current instance is not running, lines of it are stored, and no second read
	// since it stopped has confirmed where its log ends yet (see confirms): a follower asks for
	// it again at once rather than waiting for a new status.
	Confirm bool
	Err     error
}

// Options are the export settings.
type Options struct {
	// Timestamps keeps the served timestamp in front of each stored line.
	Timestamps bool
	// Since bounds the first export of a container; zero exports all the API has.
	Since time.Time
	// BufferSize is the read buffer of one stream (logline.DefaultBufferSize if zero).
	BufferSize int
	// Follow keeps the current instance's stream open for new lines, writing each out as it comes
	// and saving the checkpoint at most every CommitInterval while lines arrive.
	Follow         bool
	CommitInterval time.Duration
	// CommitBytes is how many bytes a long export writes between checkpoints (CommitEvery if
	// zero). In a bucket, it is the size of a segment.
	CommitBytes int64
	// Metrics, if set, is told what is stored and what fails to be.
	Metrics Metrics
	// ResumeTail is how many entries from its end a resume asks for first (see tailLines): 0
	// estimates it, a negative number never asks for a tail.
	ResumeTail int64
}

// Metrics receives what exports store, for monitoring. Its methods are called from many exports
// at once.
type Metrics interface {
	// Written is called for each line as it is appended to its file, with the line's timestamp:
	// once per line, so it must be cheap and must not allocate.
	Written(ts time.Time)
	// Saved is called after a checkpoint was saved, with the lines and bytes it added.
	Saved(namespace string, lines, bytes int64)
	// SaveFailed is called when a checkpoint could not be saved.
	SaveFailed(namespace string, err error)
}

// Exporter exports containers into one destination.
type Exporter struct {
	Client kubernetes.Interface
	Dest   store.Destination
	Options
	// streams, if set, bounds the log requests open at once (see ExportAll).
	streams chan struct{}
}

// errRotated marks a log whose already stored lines are no longer served as they were.
var errRotated = errors.New("log rotated or replaced")

// errGone marks a previous instance whose log the kubelet no longer serves.
var errGone = errors.New("previous instance's log is gone")

// maxAttempts bounds how often one export starts again because the container changed under
// it; a container that restarts faster than its log can be read is left for the next run.
const maxAttempts = 4

// Export brings one container's file up to date with what the API serves.
func (e *Exporter) Export(ctx context.Context, t target.Target) Result {
	var total Result
	// seen holds the instances of earlier attempts' statuses: the run saw them, so if they are
	// gone by the time it reads the log, that is a loss to report, not a container never seen.
	var seen []*instance
	for attempt := 1; ; attempt++ {
		res, changed := e.export(ctx, t, seen)
		total.Target, total.File, total.Skipped, total.Complete, total.Confirm, total.Err = res.Target, res.File, res.Skipped, res.Complete, res.Confirm, res.Err
		total.Lines += res.Lines
		total.Bytes += res.Bytes
		total.Gaps = append(total.Gaps, res.Gaps...)
		if changed == nil || res.Err != nil {
			return total
		}
		if attempt == maxAttempts {
			total.Err = fmt.Errorf("%w, %d times: what is stored is consistent, run again", changed, attempt)
			return total
		}
		klog.V(1).InfoS("container changed while it was exported; starting again from the checkpoint", "container", t.Key())
		older, current := instances(t.PodUID, t.Status)
		seen = append(seen, older, current)
		t = changed.fresh
	}
}

// Gone reports what is lost of a container whose pod went before its log could be read: what
// it (or an older pod of the same name) logged after the file's checkpoint, or its whole log if
// nothing of it is stored, once it had started (nothing, if the last status seen shows an instance
// terminated whose log is stored to its end). Nothing is requested, since the name may belong
// to a newer pod already.
func (e *Exporter) Gone(t target.Target) Result {
	res := Result{Target: t}
	cp, err := e.Dest.Checkpoint(t.Namespace, t.Pod, t.Container)
	if err != nil {
		res.Err = err
		return res
	}
	if cp != nil && cp.Instance == "" {
		// Empty: saved by a run that found the log removed, before its export saved anything
		// (or a first export that did not finish): nothing of the container is stored.
		cp = nil
	}
	switch older, current := instances(t.PodUID, t.Status); {
	case current != nil && storedToEnd(cp, t.PodUID, older, current, true) == current:
		// The last status seen shows the instance terminated, and its log is stored to its end:
		// nothing of it is unstored (an export would not have asked for it either).
	case current != nil && storedToEnd(cp, t.PodUID, older, current, false) == current:
		// Read to its end once: a response the API server cut short ends as normally, and only
		// a second read could have told.
		res.Gaps = append(res.Gaps, Gap{From: gapFrom(cp.Last), Reason: "the pod went before a second read confirmed where its log ends: what it logged after the checkpoint may be lost"})
	case cp != nil && cp.PodUID != "" && cp.PodUID != t.PodUID:
		res.Gaps = append(res.Gaps, Gap{From: gapFrom(cp.Last), Reason: fmt.Sprintf(
			"pod %s was replaced by one of the same name (uid %s), which went before its log was read: what the old pod logged after the checkpoint, and the new one's log, are lost", cp.PodUID, t.PodUID)})
	case cp != nil:
		res.Gaps = append(res.Gaps, Gap{From: gapFrom(cp.Last), Reason: "the pod went before its log was read again: what it logged after the checkpoint is lost"})
	case current != nil:
		res.Gaps = append(res.Gaps, Gap{Reason: "the pod went before its log was read: its log is lost"})
	}
	res.Err = e.RecordGaps(t, res.Gaps)
	return res
}

// export runs one attempt. If the container changed under it, what the attempt wrote after its
// last checkpoint is dropped, res counts only what is saved, and changed holds the fresh target.
func (e *Exporter) export(ctx context.Context, t target.Target, seen []*instance) (res Result, changed *instanceChanged) {
	res = Result{Target: t}
	older, current := instances(t.PodUID, t.Status)
	if current == nil {
		res.Skipped = "not started"
		return res, nil
	}
	if p, ok := e.Dest.(store.Peeker); ok {
		path, cp, err := p.Peek(t.Namespace, t.Pod, t.Container)
		if err == nil && storedToEnd(cp, t.PodUID, older, current, true) == current {
			// As below, without opening the log: most of a cluster's containers may be finished.
			klog.V(2).InfoS("container instance stored to its end; not requested again", "container", t.Key(), "instance", current.id)
			res.File, res.Complete = path, true
			return res, nil
		}
	}
	log, err := e.Dest.Append(t.Namespace, t.Pod, t.Container)
	if err != nil {
		res.Err = err
		return res, nil
	}
	res.File = log.Path()
	if e.Follow {
		// Thousands of followed containers may catch up at once (when the follower starts,
		// after a reconnect): each with small buffers.
		log.KeepBufferSmall()
	}
	defer func() {
		if err := log.Close(); err != nil && res.Err == nil {
			res.Err = err
		}
	}()
	found := log.Found()
	if found.Reset {
		klog.V(1).InfoS("log file was removed; exporting again from the start", "file", res.File)
	}
	stored := log.Checkpoint()
	if storedToEnd(stored, t.PodUID, older, current, true) == current {
		// It has terminated and its log is stored up to its end: nothing can be new.
		klog.V(2).InfoS("container instance stored to its end; not requested again", "container", t.Key(), "instance", current.id)
		res.Complete = true
		return res, nil
	}
	m := &merge{Exporter: e, ctx: ctx, t: t, log: log, res: &res, gap: -1, seen: seen, recorded: recorded{open: -1}}
	m.timer, _ = log.(store.LineTimer)
	switch {
	case stored != nil:
		m.cp = *stored
		// Said again only once a stream proves it (see readToEnd, confirms).
		m.cp.Complete, m.cp.Confirmed = "", false
		err = m.run(ctx, stored, older, current)
	case found.Recovered != nil:
		m.cp = *found.Recovered
		err = m.recover(ctx, older, current)
	default:
		if a := found.Archived; a != nil && a.Instance != "" {
			// The earlier pod's log went into an archive when the pod was found gone: what it
			// logged after its last export was never served again.
			m.openGap(a.Last, fmt.Sprintf("pod %s, whose log is stored compressed, went before its log was read again: what it logged after the last export is lost", a.PodUID))
		}
		err = m.run(ctx, nil, older, current)
	}
	if errors.As(err, &changed) {
		res.Lines, res.Bytes, res.Gaps = m.saved.Lines, m.saved.Bytes, res.Gaps[:m.saved.gaps]
		return res, changed
	}
	if err == nil && m.ended != nil && m.ended == current && m.cp.Instance == current.id {
		// Confirmed only by a second read since it stopped: the one that stored its end did so
		// in an earlier run (its checkpoint said so); what a run stored while it ran says nothing
		// of where its log ends. A look of this export that wrote showed the log going on past
		// where the earlier read ended.
		m.cp.Complete = current.id
		m.cp.Confirmed = m.confirmed && !m.fresh && (m.twice || stored != nil && stored.Complete == current.id)
	}
	if err != nil && stored != nil && !m.fresh && sameCheckpointWindow(&m.cp, stored) {
		// A run that failed (the pod deleted at the request, a response cut short at every
		// look) and stored nothing learnt nothing of where the log ends: an earlier read that
		// ended there still did, and Gone must not call a loss certain for want of it.
		m.cp.Complete, m.cp.Confirmed = stored.Complete, stored.Confirmed
	}
	if !m.unproven {
		// The streams are over: this commit holds none.
		m.last = true
		if cerr := m.commit(stored); err == nil {
			err = cerr
		}
	}
	if gs := m.unsavedGaps(); len(gs) > 0 {
		if gerr := e.RecordGaps(t, gs); err == nil {
			err = gerr
		}
	}
	res.Err = err
	// A terminated instance's end is confirmed by a second read (see confirms), whatever the
	// first wrote: what a run stored while it ran says nothing of where its log ends, and a read
	// that served nothing may have been cut before its first line. An instance without a
	// container ID is never confirmed.
	res.Confirm = err == nil && !current.running && !m.cp.Confirmed && current.id != "" && !startNamed(current.id)
	res.Complete = err == nil && !current.running && !res.Confirm
	return res, nil
}

// merge is the export of one container in one run.
type merge struct {
	*Exporter
	ctx context.Context
	t   target.Target
	log store.Appender
	// timer is log, if it wants each line's time.
	timer store.LineTimer
	res   *Result
	seen  []*instance
	// cp describes what the file holds, line by line as it is written.
	cp store.Checkpoint
	// gap is the index in res.Gaps of a gap that waits for the timestamp of the next written
	// line, which ends it; -1 if none. gapInLog: that line is of the instance whose lines the
	// gap lost (a rotation), and may be older than the last of them (see gapFrom).
	gap      int
	gapInLog bool
	// proof is the state of the stream being read: whether its instance is proven (see
	// serves), and while it is not, the instance asked for and the oldest line it served.
	proof struct {
		proven   bool
		in       *instance
		earliest time.Time
		// before is the newest stored line when the stream began.
		before time.Time
	}
	// probing: the stream is not followed, whatever the options (it asks another instance
	// whether it serves the stored lines, or checks the window before a followed stream).
	probing bool
	// unproven: m.cp names an instance that no stream proved (see recover); it is not saved.
	unproven bool
	// matched: the last stream served the checkpoint's window, a line or more, as stored.
	matched bool
	// ended: the instance whose log the last stream read up to its end for good (see
	// readToEnd), nil if it did not; confirmed: that stream also confirmed it (see confirms),
	// twice: by a look of this export at the instance stopped (see staleEnd).
	ended            *instance
	confirmed, twice bool
	// staleLook: where the look before ended, while looks serve only stored lines after a
	// rotation (see staleEnd).
	staleLook *lookEnd
	// held: the line the last look ended inside (see stream).
	held heldLine
	// fresh: a stream of this export wrote something; lastFresh: the last call of stream did.
	fresh, lastFresh bool
	recorded         recorded
	// last: the export's streams are over, and the next save is its last (see store.Finisher).
	last bool
	// live is the window of the stream being read while m.cp's window is the same: its hash is
	// hashed and copied to m.cp when m.cp is read (see window.pending).
	live *window
	// saved is what the last saved checkpoint covers of this run.
	saved struct {
		at           time.Time
		Lines, Bytes int64
		gaps         int
	}
}

func (m *merge) run(ctx context.Context, stored *store.Checkpoint, older, current *instance) error {
	switch {
	case stored == nil:
		for _, in := range m.seen {
			if in != nil && !in.same(m.t.PodUID, older) && !in.same(m.t.PodUID, current) {
				m.openGap(time.Time{}, fmt.Sprintf("container instance %s, seen when the pods were listed, was gone before its log was read (it restarted twice or more, or the pod was replaced)", in.id))
				break
			}
		}
		if older != nil {
			// A previous instance whose log is gone was never stored: nothing is lost here.
			err := m.full(ctx, older, true)
			if err == nil {
				err = m.settle(ctx, older, false, m.Since)
			}
			if errors.Is(err, errUnsettled) {
				return nil
			}
			if err != nil && !errors.Is(err, errGone) {
				return err
			}
		}
		return m.full(ctx, current, true)
	case current.is(m.t.PodUID, stored.Instance):
		return m.resume(ctx, current, older)
	case older.is(m.t.PodUID, stored.Instance):
		if storedToEnd(stored, m.t.PodUID, older, current, true) == older {
			// The previous instance's log is stored up to its end: only current's is new.
			return m.full(ctx, current, false)
		}
		err := m.resume(ctx, older, current)
		if err == nil {
			err = m.settle(ctx, older, stored.Complete == older.id, m.cp.Since)
		}
		switch {
		case errors.Is(err, errProvenNewer), errors.Is(err, errUnsettled):
			return nil
		case errors.Is(err, errGone):
			m.openGap(m.cp.Last, fmt.Sprintf("the log of container instance %s is no longer served; lines it logged after the checkpoint are lost", stored.Instance))
		case err != nil:
			return err
		}
		return m.full(ctx, current, false)
	default:
		m.openGap(stored.Last, fmt.Sprintf("container instance %s is no longer served (restarted more than once, or the pod was replaced); lines it logged after the checkpoint are lost", stored.Instance))
		if older != nil {
			err := m.full(ctx, older, false)
			if err == nil {
				err = m.settle(ctx, older, false, time.Time{})
			}
			if errors.Is(err, errUnsettled) {
				return nil
			}
			if err != nil && !errors.Is(err, errGone) {
				return err
			}
		}
		return m.full(ctx, current, false)
	}
}

// errUnsettled: the previous instance's log served new lines every time it was read (see settle).
var errUnsettled = errors.New("the previous instance's log served new lines at every read")

// settle reads the previous instance, older, again from what is stored of it until a read serves
// nothing new, before the export goes on to the current instance: a response that the API server
// ended early ends as normally as the log does, and once the checkpoint names the current
// instance, nothing of the previous one is read again. Two reads of it since it stopped must end
// at the same line: the last one, and the one before, of this export, or, if ended, the earlier
// run's that read it to its end (store.Checkpoint.Complete) when the last served nothing new.
// What a read stored while the instance ran says nothing of where its log ends. errUnsettled
// after maxLooks reads that each served new lines: the current instance is left to the next run.
//
// since is the first read's: a read that stored nothing goes on from it (--since), not from the
// start. A read that ends inside the stored window is a response ended early (the log of an
// instance that stopped is not rotated): unsettled too.
func (m *merge) settle(ctx context.Context, older *instance, ended bool, since time.Time) error {
	if ended && !m.lastFresh {
		return nil
	}
	for looks := 0; ; looks++ {
		if looks == maxLooks {
			klog.V(1).InfoS("previous instance's log served new lines at every read; the current instance is left to the next run", "container", m.t.Key())
			return errUnsettled
		}
		klog.V(2).InfoS("reading the previous instance's log once more to confirm its end", "container", m.t.Key())
		from := m.cp.Since
		if m.cp.Instance != older.id || from.IsZero() && !m.cp.After {
			from = since
		}
		if err := m.stream(ctx, older, from, m.after()); errors.Is(err, errRotated) || errors.Is(err, errCutShort) {
			klog.V(1).InfoS("previous instance's log ended inside its stored lines; the current instance is left to the next run", "container", m.t.Key())
			return errUnsettled
		} else if err != nil {
			return err
		}
		if !m.lastFresh {
			return nil
		}
	}
}

// recover continues a file whose checkpoint was read back from its last lines, once the API
// proves it: the instance that still serves those lines, exactly, is the one they came from.
func (m *merge) recover(ctx context.Context, older, current *instance) error {
	for _, in := range []*instance{current, older} {
		if in == nil {
			continue
		}
		m.cp.PodUID, m.cp.Instance = m.t.PodUID, in.id
		err := m.stream(ctx, in, m.cp.Since, nil)
		if errors.Is(err, errRotated) || errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			// Unless the read-back lines were served as stored, a stream cut short proved
			// nothing, and the instance is still a guess.
			m.unproven = !m.matched
			return err
		}
		klog.V(1).InfoS("checkpoint read back from the file and proven", "file", m.res.File, "instance", in.id)
		if in == older {
			return m.full(ctx, current, false)
		}
		return nil
	}
	return fmt.Errorf("%s %w, and its last lines are not what the API serves for this container: refusing to append (move it aside to export the log again)", m.res.File, store.ErrNoCheckpoint)
}

func (m *merge) openGap(from time.Time, reason string) {
	m.res.Gaps = append(m.res.Gaps, Gap{From: gapFrom(from), Reason: reason})
	m.gap, m.gapInLog = len(m.res.Gaps)-1, false
}

// full exports an instance none of whose lines are stored.
func (m *merge) full(ctx context.Context, in *instance, first bool) error {
	m.cp.PodUID, m.cp.Instance = m.t.PodUID, in.id
	// Last stays the newest stored line of any instance: a gap found later starts there.
	new(window).saveTo(&m.cp)
	var since time.Time
	if first {
		since = m.Since
	}
	return m.stream(ctx, in, since, nil)
}

// errProvenNewer: the lines a checkpoint put in the previous instance are served by the current
// one, so the previous instance's tail can no longer be put in order; the current one was
// exported.
var errProvenNewer = errors.New("checkpoint proven in the current instance")

// resume exports what is new in the instance the checkpoint points into; other is the instance
// the API serves beside it.
func (m *merge) resume(ctx context.Context, in, other *instance) error {
	m.cp.PodUID, m.cp.Instance = m.t.PodUID, in.id
	for rotations := 0; ; rotations++ {
		err := m.catchUp(ctx, in)
		if !errors.Is(err, errRotated) && !errors.Is(err, errGone) || rotations == maxAttempts {
			return err
		}
		// The stored lines are not served as they were: the container may have restarted since
		// the pods were listed, and then the request reached another instance.
		if err := serves(ctx, m.Exporter, m.t, in, time.Time{}); err != nil && !errors.Is(err, errUnprovable) {
			return err
		}
		if in.previous && other != nil && windowOf(m.cp).skip > 0 {
			// A status that lagged behind the kubelet can have put the current instance's first
			// lines under the previous one's name: if they are served there, they came from it.
			// (A window without a line proves nothing, and the probe would write other's lines.)
			cp := m.cp
			m.cp.Instance = other.id
			// Not followed: a stream that waits for new lines would never say that the stored
			// ones are not there, and the previous instance's tail would never be read.
			m.probing = true
			oerr := m.stream(ctx, other, m.cp.Since, m.after())
			m.probing = false
			if m.matched {
				// When in's unstored lines began is unknown (no line of in may be stored at all):
				// they end before the newest stored line of other.
				m.res.Gaps = append(m.res.Gaps, Gap{To: ptr(cp.Last), Reason: fmt.Sprintf("lines stored as container instance %s's were served by %s (the pod's status lagged behind a restart); what %s logged before them and was not stored is lost", in.id, other.id, in.id)})
				if oerr != nil {
					return oerr
				}
				return errProvenNewer
			}
			// Not proven either way (a stream cut before it said), or not other's: the
			// checkpoint stays in.
			m.cp = cp
			if oerr != nil && !errors.Is(oerr, errRotated) && !errors.Is(oerr, errGone) {
				return oerr
			}
		}
		if errors.Is(err, errGone) {
			return err
		}
		// The stored lines are gone from what the API serves: keep only lines newer than the
		// newest stored one, and say that what was logged in between may be lost. The
		// checkpoint says so (After) until a line is served, so that a run stopped before then
		// leaves the next to go on from there rather than find the rotation again.
		klog.V(1).InfoS("log rotated since the last export", "file", m.res.File, "last", m.cp.Last)
		m.openGap(m.cp.Last, "the log was rotated or replaced since the last export; lines logged in between may be missing")
		m.gapInLog = true
		(&window{since: m.cp.Since, after: true}).saveTo(&m.cp)
	}
}

// catchUp reads in from the checkpoint's window on: a follower of a running instance first with a
// stream that ends, then follows. A followed stream tells that the stored lines are no longer
// served only once a line comes or the stream ends: after a rotation to an empty file, neither
// may happen for long, and the loss would go unreported.
func (m *merge) catchUp(ctx context.Context, in *instance) error {
	follow := m.Follow && in.running && !in.previous
	if w := windowOf(m.cp); !follow || w.skip == 0 && !w.after {
		return m.stream(ctx, in, m.cp.Since, m.after())
	}
	m.probing = true
	err := m.stream(ctx, in, m.cp.Since, m.after())
	m.probing = false
	if err != nil {
		return err
	}
	return m.stream(ctx, in, m.cp.Since, m.after())
}

// after is the newest stored timestamp while the window is not known (see store.Checkpoint.After).
func (m *merge) after() *time.Time {
	if !m.cp.After {
		return nil
	}
	return ptr(m.cp.Last)
}

func ptr[T any](v T) *T { return &v }

// gapFrom is where a gap after a stored line whose timestamp is last starts: at the start of its
// second. The runtime timestamps stdout and stderr each as it reads them, so a line logged after
// the newest stored one may carry an older timestamp; within a second, which is also as far back
// as a resume's sinceTime serves. For the same reason a gap inside one instance's log (a rotation)
// that the next line written closes ends at the end of that line's second: a lost line logged
// before it may be newer. (A later instance starts after the lost lines were logged.)
func gapFrom(last time.Time) time.Time { return last.Truncate(time.Second) }

// gapTo is where a gap from from ends at a line whose time is to: nowhere (open, up to now) if
// to is before from. Then a clock stepped back, or two nodes' clocks differ, and no time bounds
// the lost lines from above: a gap that ended where it starts would cover none of them.
func gapTo(to, from time.Time) *time.Time {
	if to.Before(from) {
		return nil
	}
	return &to
}

// keepWindow bounds what a stream that ends keeps of its window's lines unhashed (see
// window.kept): more than a second of most logs, so that their windows are hashed only when saved.
const keepWindow = 64 << 10

// stream reads one instance's log from since on. The stream first serves what the checkpoint's
// window says is stored (checked, then skipped); every line after it is new, except that with
// after set only lines newer than *after are written.
// errLookAgain: the stream of a stopped instance ended inside a line that no earlier look of
// this export ended inside the same way (see stream).
var errLookAgain = errors.New("the stream ended inside a line; reading it again")

// maxLooks bounds how often stream reads an instance whose streams keep ending inside a line
// differently; the line is then left to the next run.
const maxLooks = 3

// errCutShort: every look ended inside the stored lines, each at another place.
var errCutShort = errors.New("its responses ended inside the lines already stored, each at another place (cut short on the way?); left to the next run")

// stream reads in's log from since (after: see after), and again while it ends inside a line
// of a stopped instance that the look before did not end inside the same way. A finished
// container's last line may have no newline, and is then stored completed; but a response that
// the API server ended early (its copy from the kubelet broke off; see store.Checkpoint.Confirmed)
// ends inside a line too, and storing that line completed would store a line never logged. Two
// looks that end inside the same line (its timestamp, and as many bytes) are taken as its end.
//
// A stream that ends inside the stored lines (see shortEnd) is read again too: two that end at
// the same byte show the log ending there now (errRotated); had the first been cut short, the
// next serves the rest, and the window is not lost to a response the API server cut. After
// maxLooks that end each at another place, the instance is left to the next run (errCutShort).
func (m *merge) stream(ctx context.Context, in *instance, since time.Time, after *time.Time) error {
	m.held, m.lastFresh, m.staleLook = heldLine{}, false, nil
	var short *shortEnd
	for looks := 1; ; looks++ {
		lines := m.res.Lines
		err := m.look(ctx, in, since, after)
		if end := (*shortEnd)(nil); errors.As(err, &end) {
			switch {
			case short != nil && *short == *end:
				return errRotated
			case looks == maxLooks:
				return fmt.Errorf("reading log of %s: %w", m.t.Key(), errCutShort)
			}
			klog.V(2).InfoS("stream ended inside the stored lines; reading it again", "container", m.t.Key(), "bytes", end.bytes)
			short = end
			continue
		}
		if !errors.Is(err, errLookAgain) {
			return err
		}
		if looks == maxLooks {
			klog.V(1).InfoS("stream of a stopped container ended inside a line differently every time; leaving the line to the next run", "container", m.t.Key())
			return nil
		}
		klog.V(2).InfoS("stream of a stopped container ended inside a line; reading it again", "container", m.t.Key())
		if m.res.Lines > lines {
			// On from what the look stored, which serves the line first.
			since, after = m.cp.Since, m.after()
		}
	}
}

// heldLine is a line a stream of a stopped instance ended inside: its timestamp and the bytes
// served of it.
type heldLine struct {
	at time.Time
	n  int64
}

// look reads in's log once: first only its tail, where that is likely to hold the stored window
// (see tailLines), and from since if it did not.
func (m *merge) look(ctx context.Context, in *instance, since time.Time, after *time.Time) error {
	if n := m.tailLines(in, since, after, time.Now()); n > 0 {
		err := m.streamOnce(ctx, in, since, after, n)
		if !errors.Is(err, errTailMiss) {
			return err
		}
		klog.V(2).InfoS("the log's tail did not hold the stored window; reading it from since", "container", m.t.Key(), "tailLines", n)
	}
	return m.streamOnce(ctx, in, since, after, 0)
}

// streamOnce reads in's log from since, or (tail > 0) only its last tail entries, of which it
// keeps what a read from since serves (see tailFilter): then it returns errTailMiss, having
// written nothing, unless they begin early enough and serve the stored window.
func (m *merge) streamOnce(ctx context.Context, in *instance, since time.Time, after *time.Time, tail int64) (err error) {
	follow := m.Follow && !m.probing && in.running && !in.previous
	m.matched, m.ended, m.confirmed, m.twice = false, nil, false, false
	// fresh: this stream wrote something (m.fresh: any stream of the export). freshLines counts
	// the whole lines it wrote.
	fresh, freshLines := false, 0
	// lineLen is what the stream served of the line being read.
	var lineLen int64
	defer func() { m.fresh, m.lastFresh = m.fresh || fresh, m.lastFresh || fresh }()
	// A line that an earlier stream of this export ended inside is served again from its start.
	if err := m.log.DropPartial(); err != nil {
		return err
	}
	if follow && m.log.Length() > m.log.Committed() {
		// A followed stream may wait long for its first line: what the previous instance gave
		// is saved (and shown) now, not with it.
		if err := m.save(); err != nil {
			return err
		}
	}
	opts := &corev1.PodLogOptions{Container: m.t.Container, Timestamps: true, Previous: in.previous, Follow: follow}
	if !since.IsZero() {
		st := metav1.NewTime(since)
		opts.SinceTime = &st
	}
	var tails *tailFilter
	if tail > 0 {
		opts.TailLines, opts.SinceTime, tails = &tail, nil, &tailFilter{since: since}
	}
	if m.streams != nil {
		select {
		case m.streams <- struct{}{}:
		case <-ctx.Done():
			return m.readError(ctx, ctx.Err())
		}
		defer func() { <-m.streams }()
	}
	// A tail that missed is drained (see drainTail), for at most drainWait: its own context
	// then ends it, as a stalled server would otherwise hold the export.
	reqCtx, drain := ctx, context.CancelFunc(nil)
	if tail > 0 && !follow {
		reqCtx, drain = context.WithCancel(ctx)
		defer drain()
	}
	rc, err := m.Client.CoreV1().Pods(m.t.Namespace).GetLogs(m.t.Pod, opts).Stream(reqCtx)
	if err != nil {
		if in.previous && (apierrors.IsBadRequest(err) || apierrors.IsNotFound(err)) {
			return errGone
		}
		return m.readError(ctx, err)
	}
	defer func() {
		if errors.Is(err, errTailMiss) && drain != nil {
			t := time.AfterFunc(drainWait, drain)
			_, _ = io.CopyN(io.Discard, rc, drainTail)
			t.Stop()
		}
		rc.Close()
	}()
	newReader := logline.NewReader
	if m.Follow {
		newReader = logline.NewLineReader
	}
	r := newReader(rc, m.BufferSize)
	defer r.Release()
	w := windowOf(m.cp)
	if !follow {
		w.keep = keepWindow
	}
	skip := newSkipper(w, since)
	defer func() { m.matched = skip.matched() }()
	// m.cp's window is w's from its first line saved on (see endLine), hashed when it is read.
	defer m.unbind()
	// Lines after a proven window come from the instance that served the stored ones; without
	// a window, the instance is proven by asking for the status after the lines came.
	m.proof.proven, m.proof.in, m.proof.earliest, m.proof.before = w.skip > 0, nil, time.Time{}, m.cp.Last
	var (
		line     windowLine
		write    bool
		lineTime time.Time
		stored   bool // the fragment just read was already stored
		// written is what the line being read added to the log so far.
		written int64
		// ties: lines with the timestamp *after that are stored (see below).
		ties = m.cp.Ties
	)
	var parser logline.Parser
	// untimed: the line being read is a tail to skip (see below).
	untimed := false
	// look: where a stream of a stopped instance ends while the window is unknown (see staleEnd).
	var look *lookEnd
	if after != nil && !in.running && !in.previous {
		look = new(lookEnd)
	}
	every := m.CommitBytes
	if every <= 0 {
		every = CommitEvery
	}
	for {
		if !r.Ready() {
			// The next read moves the buffer's bytes: what the window has of them is kept or
			// hashed now.
			w.move(&line)
			if follow && r.Partial() && m.log.Length() > m.log.Committed() {
				// Inside a line longer than the buffer, whose rest may be long in coming (a line
				// the program has not ended), after lines not saved yet: they are saved
				// meanwhile, as idle saves them (helper 58: they waited for the line's end).
				if err := m.waitSaving(r, m.saveLines); err != nil {
					return err
				}
			}
		}
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m.readError(ctx, err)
		}
		if look != nil {
			look.bytes, look.hash = look.bytes+int64(len(f.Data)), look.hash.Add(f.Data)
		}
		if tails != nil {
			if drop, err := tails.feed(f); err != nil {
				return err
			} else if drop {
				continue
			}
		}
		if untimed {
			untimed = !f.Last
			continue
		}
		if skip.done {
			// Past the window (a call saved on every line).
			stored = false
		} else if stored, err = skip.feed(f); err != nil {
			if tail > 0 {
				return errTailMiss
			}
			return err
		} else if stored {
			continue
		}
		data := f.Data
		if f.First {
			lineLen = 0
		}
		lineLen += int64(len(data))
		if f.First {
			ts, at, err := parser.Parse(data)
			if err != nil {
				if !f.Last {
					// A line's first fragment without its newline is cut short by the stream's
					// end (a stopped run, a broken connection) unless it fills the buffer: then
					// the stream failed, not the line, and the next serves the line again.
					g, rerr := r.Next()
					if rerr != nil {
						if rerr == io.EOF {
							// Where the server ended it, it may have said why: a kubelet (and kwok)
							// that fails after the headers writes its error into the stream, as
							// "failed to create fsnotify watcher: too many open files".
							rerr = fmt.Errorf("the stream ended inside a line, %q: %w", data[:min(len(data), 120)], io.ErrUnexpectedEOF)
						}
						return m.readError(ctx, rerr)
					}
					f = g
				}
				if since.IsZero() {
					return fmt.Errorf("reading log of %s: %w", m.t.Key(), err)
				}
				// The untimestamped rest of a line whose first entry is older than since (the
				// kubelet filters each entry): not served as a line from since, so not one to
				// store from it (see the skipper).
				klog.V(2).InfoS("skipping the rest of a line begun before since", "container", m.t.Key(), "since", since)
				untimed = !f.Last
				continue
			}
			lineTime, written = ts, 0
			if look != nil && ts.After(look.newest) {
				look.newest = ts
			}
			w.begin(&line, ts.Unix())
			write = after == nil || ts.After(*after)
			if after != nil && ts.Equal(*after) {
				// The stored lines with the newest timestamp came in the order served, so the
				// log serves a suffix of them before any new one with that timestamp: after as
				// many as are stored, the rest are new. (Had the rotation taken some of them,
				// as many new ones are skipped, inside the gap reported.)
				if ties > 0 {
					ties--
				} else {
					write = true
				}
			}
			if write && !m.Timestamps {
				data = data[at:]
			}
		}
		w.add(&line, f.Data)
		if write {
			// New, not stored: a line the window did not consume that is not one of the
			// stored ones taken as such either (older than the newest stored, or its ties).
			fresh = true
			if _, err := m.log.Write(data); err != nil {
				return err
			}
			written += int64(len(data))
		}
		if f.Last {
			if write {
				freshLines++
			}
			m.endLine(write, lineTime, written, &w, &line, in)
			// A long export saves its checkpoint every so many bytes.
			if m.log.Length()-m.log.Committed() >= every {
				if err := m.save(); err != nil {
					return err
				}
			}
			if follow && !r.Ready() {
				// Caught up: the next read waits for the container, also where it came with the
				// start of the next line (a P entry, a line the program has not ended): make what
				// came visible now, not once that line ends. (idle's r.Idle and r.Wait move the
				// buffer's bytes: hash them first.)
				w.fold(nil)
				if err := m.idle(r); err != nil {
					return err
				}
			}
		}
	}
	if untimed {
		return m.readError(ctx, fmt.Errorf("the stream ended inside a line: %w", io.ErrUnexpectedEOF))
	}
	if err := skip.finish(); err != nil {
		if tail > 0 {
			return errTailMiss
		}
		return err
	}
	held := false
	if r.Partial() && !stored && !in.running {
		// The look before ended inside this line, as the first new one, with as many bytes: a
		// finished container's last line, which will never get its newline. Stored completed.
		// Otherwise looked at again (see stream).
		held = freshLines > 0 || m.held.n != lineLen || !m.held.at.Equal(lineTime)
		m.held = heldLine{at: lineTime, n: lineLen}
	}
	if r.Partial() && !stored && !in.running && !held {
		if write {
			if _, err := m.log.Write([]byte{'\n'}); err != nil {
				return err
			}
			written++
		}
		m.endLine(write, lineTime, written, &w, &line, in)
	}
	if err := m.prove(); err != nil {
		return err
	}
	if held {
		return errLookAgain
	}
	if readToEnd(in, skip.matched(), m.proof.earliest) {
		m.ended, m.confirmed = in, confirms(skip.matched(), fresh)
	}
	if look != nil && !fresh && staleEnd(in, look.newest, m.cp.Last, m.proof.earliest) {
		m.ended = in
		if m.staleLook != nil && m.staleLook.bytes == look.bytes && m.staleLook.hash == look.hash {
			m.confirmed, m.twice = true, true
			return nil
		}
		m.staleLook = look
		return errLookAgain
	}
	return nil
}

// lookEnd is where a stream ended: the bytes it served, their hash, and its newest line.
type lookEnd struct {
	bytes  int64
	hash   store.Hash
	newest time.Time
}

// readError names the container in a failed request or read. A stream whose context ended
// fails with whatever the transport makes of it (a closed connection, say): it is reported as
// the context's cause, so that callers can tell a stopped stream from a broken one.
func (m *merge) readError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return fmt.Errorf("reading log of %s: %w", m.t.Key(), err)
}

// prove checks, once per stream, that the lines counted came from the instance asked for.
func (m *merge) prove() error {
	if m.proof.proven || m.proof.in == nil {
		return nil
	}
	if servedBefore(m.proof.in, m.proof.earliest, m.t.NodeTime) {
		m.proof.proven = true
		return nil
	}
	// Also when the run is being stopped: what was read is saved, not fetched again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), proveTimeout)
	defer cancel()
	err := serves(ctx, m.Exporter, m.t, m.proof.in, m.proof.earliest)
	if errors.Is(err, errUnprovable) && (m.proof.in.running || m.proof.in.previous) {
		// The lines are the pod's and are kept. But had the container restarted just before the
		// request, they are the next instance's, and what this one logged before them is lost.
		// The lost lines are the listed instance's, logged from its start: before the newest
		// stored line if the node's clock stepped back since.
		from := gapFrom(m.proof.before)
		if st := gapFrom(m.proof.in.started); !st.IsZero() && st.Before(from) {
			from = st
		}
		m.res.Gaps = append(m.res.Gaps, Gap{From: from, To: gapTo(m.proof.earliest, from), Reason: fmt.Sprintf(
			"the pod went before it could be asked which instance of the container served its log: if it restarted just before, what instance %s logged before this is lost", m.proof.in.id)})
		err = nil
	}
	if err != nil && !errors.Is(err, errUnprovable) {
		return err
	}
	m.proof.proven = true
	return nil
}

// proveTimeout bounds the status request that proves a stream's instance.
const proveTimeout = 30 * time.Second

// endLine takes a complete line into the window w and, if written (its bytes, all of them
// written successfully), into the checkpoint.
func (m *merge) endLine(write bool, ts time.Time, size int64, w *window, line *windowLine, in *instance) {
	if write || !m.cp.After {
		w.end(line)
		w.saveTo(&m.cp)
		m.live = w
	} else {
		// While the window is not known, lines not written are stored ones taken as such (older
		// than the newest, or its ties): the window is saved with the first line written, not
		// before, so that a stream cut among the ties leaves the rest to be taken as stored too.
		m.unbind()
		w.end(line)
	}
	if !m.proof.proven {
		m.proof.in = in
		if m.proof.earliest.IsZero() || ts.Before(m.proof.earliest) {
			m.proof.earliest = ts
		}
	}
	if !write {
		return
	}
	if m.cp.Begin.IsZero() && m.cp.Lines == 0 {
		m.cp.Begin = ts
	}
	switch {
	case ts.After(m.cp.Last):
		m.cp.Last, m.cp.Ties = ts, 1
	case ts.Equal(m.cp.Last):
		m.cp.Ties++
	}
	if m.gap >= 0 {
		to := ts
		if m.gapInLog {
			to = ts.Truncate(time.Second).Add(time.Second)
		}
		m.res.Gaps[m.gap].To, m.gap = gapTo(to, m.res.Gaps[m.gap].From), -1
	}
	if m.timer != nil {
		m.timer.LineAt(ts)
	}
	m.log.EndLine()
	if m.Metrics != nil {
		m.Metrics.Written(ts)
	}
	m.res.Lines++
	m.res.Bytes += size
	m.cp.Lines++
}

// CommitEvery is how many bytes a long export writes between checkpoints, so that an interrupted
// run leaves at most that much to fetch again. Each checkpoint costs two syncs (the log, then the
// checkpoint file): at 8 MiB they were a sixth of a fast export's CPU (BenchmarkMerge), for a
// bound on what a crash makes the next run fetch again that 32 MiB keeps small (well under a
// second from a kubelet, a few seconds from a slow one).
const CommitEvery = 32 << 20

// sync brings m.cp's window up to date with the live one.
func (m *merge) sync() {
	if m.live != nil {
		m.live.fold(nil)
		m.live.saveTo(&m.cp)
	}
}

// unbind leaves m.cp's window as it is now.
func (m *merge) unbind() {
	m.sync()
	m.live = nil
}

func (m *merge) save() error {
	commit := m.log.Commit
	if f, ok := m.log.(store.Finisher); ok && m.last {
		commit = f.Finish
	}
	return m.saveBy(commit)
}

// saveLines is save for a followed stream inside a line: what was written of it stays.
func (m *merge) saveLines() error { return m.saveBy(m.log.CommitLines) }

func (m *merge) saveBy(commit func(store.Checkpoint) error) error {
	m.sync()
	if err := m.prove(); err != nil {
		return err
	}
	m.saved.at = time.Now()
	m.handGaps()
	if err := commit(m.cp); err != nil {
		if m.Metrics != nil {
			m.Metrics.SaveFailed(m.t.Namespace, err)
		}
		return err
	}
	if m.Metrics != nil {
		m.Metrics.Saved(m.t.Namespace, m.res.Lines-m.saved.Lines, m.res.Bytes-m.saved.Bytes)
	}
	m.saved.Lines, m.saved.Bytes, m.saved.gaps = m.res.Lines, m.res.Bytes, len(m.res.Gaps)
	return nil
}

// idle writes out what a followed stream delivered, and saves the checkpoint if the last save is
// older than CommitInterval, so that a killed follower fetches little again. While the stream
// waits for the container, the reader and the log keep only small buffers or none.
func (m *merge) idle(r *logline.Reader) error {
	r.Idle()
	defer m.log.Idle()
	// Lines are shown only once proven to come from the instance asked for: a stream of a
	// container that restarted or a pod that was replaced may have to be cut back.
	if !m.proof.proven || time.Since(m.saved.at) >= m.CommitInterval {
		return m.save()
	}
	if err := m.log.Flush(); err != nil {
		return err
	}
	// Now, not when the wait below is over: the wait is where a follower's streams spend their time.
	m.log.Idle()
	if m.log.Length() == m.log.Committed() {
		return nil
	}
	// Lines came within the interval of the last save, and then none: they are saved when the
	// interval is over if nothing more has come by then (a checkpoint that waited for the next
	// line would leave metrics, status and a SIGKILL's re-fetch behind for as long as the
	// container is quiet).
	return m.waitSaving(r, m.save)
}

// waitSaving waits until r is Ready (a whole line, a full buffer, or the stream's end: the
// start of a line alone may wait for long, a line the program has not ended), and meanwhile
// saves with save once the last save is CommitInterval old. The save runs from a timer while
// this goroutine waits for the stream (rather than a goroutine of its own per waiting stream:
// a follower has thousands), and the stream's next line waits for it. The window must hold
// nothing of the reader's buffer (see window.move).
func (m *merge) waitSaving(r *logline.Reader, save func() error) error {
	var err error
	saved := make(chan struct{})
	t := time.AfterFunc(m.CommitInterval-time.Since(m.saved.at), func() {
		defer close(saved)
		err = save()
	})
	for !r.Ready() {
		r.Wait()
	}
	if !t.Stop() {
		<-saved // the timer fired: the save runs, or ran
	}
	return err
}

// commit saves the checkpoint if the run changed anything.
func (m *merge) commit(stored *store.Checkpoint) error {
	if stored != nil && m.res.Lines == 0 && sameCheckpointWindow(&m.cp, stored) && stored.Complete == m.cp.Complete && stored.Confirmed == m.cp.Confirmed {
		return nil
	}
	return m.save()
}

// sameCheckpointWindow tells whether two checkpoints put the window in the same place of the same instance.
func sameCheckpointWindow(a, b *store.Checkpoint) bool {
	return a.Instance == b.Instance && a.Since.Equal(b.Since) && a.Skip == b.Skip && a.Hash == b.Hash && a.After == b.After
}

// commitsPerStream is how many exports may wait for their checkpoint per open log request.
const commitsPerStream = 4

// ExportAll exports the targets, at most limit of them at once, and calls done (from one goroutine
// at a time) after each. Results come in the order of targets.
func (e *Exporter) ExportAll(ctx context.Context, targets []target.Target, limit int, done func(Result)) []Result {
	results := make([]Result, len(targets))
	at := func(i int) target.Target { return targets[i] }
	e.each(ctx, len(targets), at, nil, limit, func(i int, r Result) {
		results[i] = r
		if done != nil {
			done(r)
		}
	})
	return results
}

// ExportEach exports the targets, at most limit of them at once, and calls done (from one
// goroutine at a time) with each target's index and result once it is exported. It keeps neither:
// each target is released once exported, so that a run over tens of thousands of containers holds
// what done keeps of each result and no more of the listed pods than those not yet exported.
func (e *Exporter) ExportEach(ctx context.Context, targets *target.List, limit int, done func(int, Result)) {
	e.each(ctx, targets.Len(), targets.At, targets.Release, limit, done)
}

// each exports the n targets that at returns and releases each (if release is set) once exported.
func (e *Exporter) each(ctx context.Context, n int, at func(int) target.Target, release func(int), limit int, done func(int, Result)) {
	// limit bounds the log requests; more containers than that are under way, so that those
	// waiting for their checkpoint's sync (shared with others, see store) do not hold a stream.
	es := *e
	es.streams = make(chan struct{}, limit)
	e = &es
	var g errgroup.Group
	g.SetLimit(commitsPerStream * limit)
	var mu sync.Mutex
	for i := range n {
		g.Go(func() error {
			t := at(i)
			var r Result
			if ctx.Err() != nil {
				r = Result{Target: t, Err: ctx.Err()}
			} else {
				r = e.Export(ctx, t)
			}
			if release != nil {
				release(i)
			}
			// The status is the unpacked pod's, which a result would keep alive until the
			// summary: with tens of thousands of pods, most of what a run holds.
			r.Status = nil
			mu.Lock()
			done(i, r)
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
}
