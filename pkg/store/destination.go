package store

import (
	"path"
	"time"
)

// Destination is where an export writes: this package's local directory (Dir) or a bucket
// (pkg/bucket). The merge writes through it and never knows which one it has; what it needs of
// either is that a checkpoint is saved only after the bytes it covers are, and that a log opened
// again starts from its checkpoint, whatever an interrupted run left after it.
type Destination interface {
	// Checkpoint returns a container's checkpoint, nil if none was saved.
	Checkpoint(namespace, pod, container string) (*Checkpoint, error)
	// Append opens a container's log for appending from its checkpoint.
	Append(namespace, pod, container string) (Appender, error)
	// RecordGaps saves gaps of a container found without a commit of its log.
	RecordGaps(namespace, pod, container string, gaps []Gap) error
}

// Appender is a container's log open for appending (see Log, which is the local one).
type Appender interface {
	// Path names the log in messages and in the summary.
	Path() string
	// Checkpoint is the checkpoint the log was opened with, nil for a new log.
	Checkpoint() *Checkpoint
	// Found says what opening the log found besides its checkpoint.
	Found() Found
	// KeepBufferSmall and Idle bound the memory of a log that is followed (see Log).
	KeepBufferSmall()
	Idle()
	// Write appends to the current line; EndLine marks its end.
	Write(p []byte) (int, error)
	EndLine()
	// Length is the log's length up to the last complete line; Committed the length its saved
	// checkpoint covers.
	Length() int64
	Committed() int64
	// Flush passes on the complete lines written so far without saving a checkpoint.
	Flush() error
	// DropPartial drops what was written of a line not complete yet.
	DropPartial() error
	// AddGaps saves gaps with the next commit.
	AddGaps(gaps ...Gap)
	// Commit saves cp, with its Size set, once every complete line written is saved.
	Commit(cp Checkpoint) error
	// CommitLines is Commit for a log whose current line goes on being written: what was
	// written of it is kept for the rest, not dropped.
	CommitLines(cp Checkpoint) error
	// Close drops what was written after the last commit.
	Close() error
}

// Found is what opening a log found besides its checkpoint.
type Found struct {
	// Reset: the log had been removed while its checkpoint stayed; it starts again.
	Reset bool
	// Archived is the checkpoint of an earlier pod of the name whose log was stored compressed:
	// this log starts anew beside it.
	Archived *Checkpoint
	// Recovered is a checkpoint read back from a --timestamps log that had none. Its Instance
	// is unknown: the export must prove it (the Skip lines must be served as stored) before
	// appending, and refuse the log otherwise.
	Recovered *Checkpoint
}

// LineTimer is implemented by an Appender that wants the time of each line written (a bucket
// names a segment by the day of its first line); the merge calls LineAt before EndLine.
type LineTimer interface {
	LineAt(ts time.Time)
}

// Finisher is implemented by an Appender whose last commit of an export, made without holding a
// log request, may wait a little to share its syncs with other logs' (see GatherCommits): the
// merge calls Finish for it rather than Commit.
type Finisher interface {
	Finish(cp Checkpoint) error
}

// Peeker is implemented by a destination that can read a log's checkpoint more cheaply than by
// opening the log: a run skips a log it need not read (an instance stored to its end, which can
// never change) for the cost of a lookup. Thousands of finished containers are the common case.
type Peeker interface {
	// Peek returns a log's path and the checkpoint Append would open it with, if opening it
	// would find nothing else to do (no bytes to cut off, no file to rename or start again, no
	// marks of a pod that was gone); a nil checkpoint if there is none, or only Append can tell.
	Peek(namespace, pod, container string) (path string, cp *Checkpoint, err error)
}

var (
	_ Destination = (*Dir)(nil)
	_ Peeker      = (*Dir)(nil)
)

// Peek looks at the checkpoint the namespace's file holds (read once per run) and at the log's
// size, not through the handles and checks of OpenLog.
func (d *Dir) Peek(namespace, pod, container string) (string, *Checkpoint, error) {
	rel, err := LogPath(namespace, pod, container)
	if err != nil {
		return "", nil, err
	}
	cp, err := d.Checkpoint(namespace, pod, container)
	if err != nil || cp == nil || cp.Archive > 0 || !cp.Gone.IsZero() {
		return "", nil, err
	}
	// os.Root follows a symlink that stays inside the directory; OpenLog refuses one on the way
	// (see makeDirs), and so decides.
	for _, dir := range []string{namespace, path.Dir(rel)} {
		if fi, err := d.fs.Lstat(dir); err != nil || !fi.IsDir() {
			return "", nil, nil
		}
	}
	fi, err := d.fs.Lstat(rel)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != cp.Size {
		// OpenLog decides: a log removed is started again, bytes past the checkpoint are cut.
		return "", nil, nil
	}
	return d.Path(rel), cp, nil
}

// Append opens a container's log file (see OpenLog).
func (d *Dir) Append(namespace, pod, container string) (Appender, error) {
	l, err := d.OpenLog(namespace, pod, container)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Found says what opening the file found besides its checkpoint.
func (l *Log) Found() Found {
	return Found{Reset: l.Reset, Archived: l.Archived, Recovered: l.Recovered}
}
