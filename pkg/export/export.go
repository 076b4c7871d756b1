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
	From   time.Time  `json:"from"`
	To     *time.Time `json:"to,omitempty"`
	Reason string     `json:"reason"`
}

func (g Gap) String() string {
	to := "now"
	if g.To != nil {
		to = g.To.UTC().Format(time.RFC3339Nano)
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
}

// Exporter exports containers into one directory.
type Exporter struct {
	Client kubernetes.Interface
	Dir    *store.Dir
	Options
}

// errRotated marks a log whose already stored lines are no longer served as they were.
var errRotated = errors.New("log rotated or replaced")

// errGone marks a previous instance whose log the kubelet no longer serves.
var errGone = errors.New("previous instance's log is gone")

// instance is one run of a container, as the log API addresses it.
type instance struct {
	id       string
	started  time.Time
	running  bool
	previous bool
}

// instances returns the instance before the current one (if the API still serves it) and the
// current one, following the kubelet's choice of container for previous=false and previous=true.
func instances(podUID string, st *corev1.ContainerStatus) (older, current *instance) {
	if st == nil {
		return nil, nil
	}
	last := st.LastTerminationState.Terminated
	switch {
	case st.State.Running != nil:
		current = &instance{id: st.ContainerID, started: st.State.Running.StartedAt.Time, running: true}
	case st.State.Terminated != nil:
		t := st.State.Terminated
		id := t.ContainerID
		if id == "" {
			id = st.ContainerID
		}
		current = &instance{id: id, started: t.StartedAt.Time}
	case last != nil:
		// Waiting to restart: the kubelet serves the last terminated instance as the current log.
		return nil, &instance{id: last.ContainerID, started: last.StartedAt.Time}
	default:
		return nil, nil
	}
	if last != nil && (last.ContainerID == "" || last.ContainerID != current.id) {
		older = &instance{id: last.ContainerID, started: last.StartedAt.Time, previous: true}
	}
	for _, in := range []*instance{older, current} {
		// A kubelet always reports container IDs; without one, the start time still tells
		// instances apart.
		if in != nil && in.id == "" {
			in.id = startID(podUID, in.started)
		}
	}
	if older != nil && older.id == current.id {
		older = nil
	}
	return older, current
}

func startID(podUID string, started time.Time) string {
	return fmt.Sprintf("pod://%s/started/%s", podUID, started.UTC().Format(time.RFC3339))
}

// is tells whether a checkpoint's instance is in. An instance first seen without a container ID
// (before the runtime reported it) is the same one once the ID shows up.
func (in *instance) is(podUID, stored string) bool {
	return in != nil && (stored == in.id || stored == startID(podUID, in.started))
}

// Export brings one container's file up to date with what the API serves.
func (e *Exporter) Export(ctx context.Context, t target.Target) Result {
	res := Result{Target: t}
	older, current := instances(t.PodUID, t.Status)
	if current == nil {
		res.Skipped = "not started"
		return res
	}
	log, err := e.Dir.OpenLog(t.Namespace, t.Pod, t.Container)
	if err != nil {
		res.Err = err
		return res
	}
	res.File = log.Path()
	defer func() {
		if err := log.Close(); err != nil && res.Err == nil {
			res.Err = err
		}
	}()
	if log.Reset {
		klog.V(1).InfoS("log file was removed; exporting again from the start", "file", res.File)
	}
	m := &merge{Exporter: e, t: t, log: log, res: &res, gap: -1}
	stored := log.Checkpoint()
	switch {
	case stored != nil:
		m.cp = *stored
		err = m.run(ctx, stored, older, current)
	case log.Recovered != nil:
		m.cp = *log.Recovered
		err = m.recover(ctx, older, current)
	default:
		err = m.run(ctx, nil, older, current)
	}
	if cerr := m.commit(stored); err == nil {
		err = cerr
	}
	res.Err = err
	return res
}

// merge is the export of one container in one run.
type merge struct {
	*Exporter
	t   target.Target
	log *store.Log
	res *Result
	// cp describes what the file holds, line by line as it is written.
	cp store.Checkpoint
	// gap is the index in res.Gaps of a gap that waits for the timestamp of the next written
	// line, which ends it; -1 if none.
	gap int
	// saved is when the checkpoint was last saved in this run.
	saved time.Time
}

func (m *merge) run(ctx context.Context, stored *store.Checkpoint, older, current *instance) error {
	switch {
	case stored == nil:
		if older != nil {
			// A previous instance whose log is gone was never stored: nothing is lost here.
			if err := m.full(ctx, older, true); err != nil && !errors.Is(err, errGone) {
				return err
			}
		}
		return m.full(ctx, current, true)
	case current.is(m.t.PodUID, stored.Instance):
		return m.resume(ctx, current)
	case older.is(m.t.PodUID, stored.Instance):
		err := m.resume(ctx, older)
		if errors.Is(err, errGone) {
			m.openGap(stored.Last, fmt.Sprintf("the log of container instance %s is no longer served; lines it logged after the checkpoint are lost", stored.Instance))
		} else if err != nil {
			return err
		}
		return m.full(ctx, current, false)
	default:
		m.openGap(stored.Last, fmt.Sprintf("container instance %s is no longer served (restarted more than once, or the pod was replaced); lines it logged after the checkpoint are lost", stored.Instance))
		if older != nil {
			if err := m.full(ctx, older, false); err != nil && !errors.Is(err, errGone) {
				return err
			}
		}
		return m.full(ctx, current, false)
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
		err := m.stream(ctx, in, m.cp.Since, m.cp.Skip, nil)
		if errors.Is(err, errRotated) || errors.Is(err, errGone) {
			continue
		}
		if err != nil {
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
	m.res.Gaps = append(m.res.Gaps, Gap{From: from, Reason: reason})
	m.gap = len(m.res.Gaps) - 1
}

// full exports an instance none of whose lines are stored.
func (m *merge) full(ctx context.Context, in *instance, first bool) error {
	m.cp.PodUID, m.cp.Instance = m.t.PodUID, in.id
	m.cp.Since, m.cp.Skip, m.cp.Hash, m.cp.Last = time.Time{}, 0, store.NewHash(), time.Time{}
	var since time.Time
	if first {
		since = m.Since
	}
	return m.stream(ctx, in, since, 0, nil)
}

// resume exports what is new in the instance the checkpoint points into.
func (m *merge) resume(ctx context.Context, in *instance) error {
	m.cp.PodUID, m.cp.Instance = m.t.PodUID, in.id
	err := m.stream(ctx, in, m.cp.Since, m.cp.Skip, nil)
	if !errors.Is(err, errRotated) {
		return err
	}
	// The stored lines are gone from what the API serves: keep only lines newer than the newest
	// stored one, and say that what was logged in between may be lost.
	last := m.cp.Last
	klog.V(1).InfoS("log rotated since the last export", "file", m.res.File, "last", last)
	m.openGap(last, "the log was rotated or replaced since the last export; lines logged in between may be missing")
	m.cp.Skip, m.cp.Hash = 0, store.NewHash()
	return m.stream(ctx, in, m.cp.Since, 0, &last)
}

// stream reads one instance's log from since on. The first skip lines served must be the stored
// ones (their hash is checked against the checkpoint); after them every line is new, except that
// with after set only lines newer than *after are written.
func (m *merge) stream(ctx context.Context, in *instance, since time.Time, skip int64, after *time.Time) error {
	follow := m.Follow && in.running && !in.previous
	opts := &corev1.PodLogOptions{Container: m.t.Container, Timestamps: true, Previous: in.previous, Follow: follow}
	if !since.IsZero() {
		st := metav1.NewTime(since)
		opts.SinceTime = &st
	}
	rc, err := m.Client.CoreV1().Pods(m.t.Namespace).GetLogs(m.t.Pod, opts).Stream(ctx)
	if err != nil {
		if in.previous && (apierrors.IsBadRequest(err) || apierrors.IsNotFound(err)) {
			return errGone
		}
		return fmt.Errorf("reading log of %s/%s/%s: %w", m.t.Namespace, m.t.Pod, m.t.Container, err)
	}
	defer rc.Close()
	r := logline.NewReader(rc, m.BufferSize)
	var (
		served   int64
		skipHash = store.NewHash()
		// state of the line being read
		write, inWindow bool
		lineHash        store.Hash
		lineSec         int64
		lineTime        time.Time
		newWindow       bool
	)
	for {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading log of %s/%s/%s: %w", m.t.Namespace, m.t.Pod, m.t.Container, err)
		}
		data := f.Data
		if f.First {
			served++
			if served <= skip {
				skipHash = skipHash.Add(data)
				if f.Last && served == skip && skipHash != m.cp.Hash {
					return errRotated
				}
				continue
			}
			ts, at, err := logline.ParseTimestamp(data)
			if err != nil {
				return fmt.Errorf("reading log of %s/%s/%s: %w", m.t.Namespace, m.t.Pod, m.t.Container, err)
			}
			lineTime, lineSec = ts, ts.Unix()
			write = after == nil || ts.After(*after)
			newWindow = m.cp.Since.IsZero() || lineSec > m.cp.Since.Unix()
			inWindow = newWindow || lineSec == m.cp.Since.Unix()
			if newWindow {
				lineHash = store.NewHash()
			} else {
				lineHash = m.cp.Hash
			}
			if write && !m.Timestamps {
				data = data[at:]
			}
		} else if served <= skip {
			skipHash = skipHash.Add(data)
			if f.Last && served == skip && skipHash != m.cp.Hash {
				return errRotated
			}
			continue
		}
		if inWindow {
			lineHash = lineHash.Add(f.Data)
		}
		if write {
			if _, err := m.log.Write(data); err != nil {
				return err
			}
		}
		if f.Last {
			m.endLine(write, inWindow, newWindow, lineHash, lineSec, lineTime)
			if err := m.maybeCommit(); err != nil {
				return err
			}
			if follow && r.Buffered() == 0 {
				// Caught up: the next read waits for the container. Make what came visible now.
				if err := m.idle(); err != nil {
					return err
				}
			}
		}
	}
	if served < skip {
		return errRotated
	}
	if r.Partial() && !in.running {
		// A finished container's last line will never get its newline: store it completed.
		if write {
			if _, err := m.log.Write([]byte{'\n'}); err != nil {
				return err
			}
		}
		m.endLine(write, inWindow, newWindow, lineHash, lineSec, lineTime)
	}
	return nil
}

func (m *merge) endLine(write, inWindow, newWindow bool, h store.Hash, sec int64, ts time.Time) {
	if inWindow {
		if newWindow {
			m.cp.Since, m.cp.Skip = time.Unix(sec, 0).UTC(), 0
		}
		m.cp.Skip++
		m.cp.Hash = h
	}
	if ts.After(m.cp.Last) {
		m.cp.Last = ts
	}
	if !write {
		return
	}
	if m.gap >= 0 {
		to := ts
		m.res.Gaps[m.gap].To, m.gap = &to, -1
	}
	n := m.log.Length()
	m.log.EndLine()
	m.res.Lines++
	m.res.Bytes += m.log.Length() - n
	m.cp.Lines++
}

// CommitEvery is how many bytes a long export writes between checkpoints, so that an interrupted
// run leaves at most that much to fetch again.
const CommitEvery = 8 << 20

func (m *merge) maybeCommit() error {
	if m.log.Length()-m.log.Committed() < CommitEvery {
		return nil
	}
	return m.save()
}

func (m *merge) save() error {
	m.saved = time.Now()
	return m.log.Commit(m.cp)
}

// idle writes out what a followed stream delivered, and saves the checkpoint if the last save is
// older than CommitInterval, so that a killed follower fetches little again.
func (m *merge) idle() error {
	if time.Since(m.saved) >= m.CommitInterval {
		return m.save()
	}
	return m.log.Flush()
}

// commit saves the checkpoint if the run changed anything.
func (m *merge) commit(stored *store.Checkpoint) error {
	if stored != nil && m.res.Lines == 0 && stored.Instance == m.cp.Instance && stored.Since.Equal(m.cp.Since) &&
		stored.Skip == m.cp.Skip && stored.Hash == m.cp.Hash {
		return nil
	}
	return m.log.Commit(m.cp)
}

// ExportAll exports the targets, at most limit of them at once, and calls done (from one goroutine
// at a time) after each. Results come in the order of targets.
func (e *Exporter) ExportAll(ctx context.Context, targets []target.Target, limit int, done func(Result)) []Result {
	results := make([]Result, len(targets))
	var g errgroup.Group
	g.SetLimit(limit)
	var mu sync.Mutex
	for i := range targets {
		g.Go(func() error {
			if ctx.Err() != nil {
				results[i] = Result{Target: targets[i], Err: ctx.Err()}
			} else {
				results[i] = e.Export(ctx, targets[i])
			}
			if done != nil {
				mu.Lock()
				done(results[i])
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return results
}
