package store

import (
	"errors"
	"fmt"
	"hash/crc64"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Checkpoint says how much of a container's log is stored, and how to ask the API for the rest.
//
// The API's sinceTime has second precision and is inclusive, and the kubelet filters each line on
// its own timestamp. So the lines of one container instance served with sinceTime=Since are the
// lines of its log with a timestamp at or after Since, in log order; the stored ones among them are
// exactly the first Skip. Hash covers those Skip lines as served, so a log that was rotated or
// replaced since is noticed instead of skipped blindly.
type Checkpoint struct {
	// PodUID and Instance (the container ID) name the container instance the last stored line came from.
	PodUID   string `json:"podUID,omitempty"`
	Instance string `json:"instance"`
	// Since is a whole second: the newest second of any stored line of Instance.
	Since time.Time `json:"since"`
	Skip  int64     `json:"skip"`
	Hash  Hash      `json:"hash"`
	// First is the hash of the first of the Skip lines as served. A stream asked for with
	// sinceTime=Since may begin with the untimestamped tail of a long line that started before
	// Since; First tells that tail from the window's first line. Zero in checkpoints written
	// before it existed.
	First Hash `json:"first,omitempty"`
	// Last is the newest timestamp stored from Instance.
	Last time.Time `json:"last"`
	// Ties is how many stored lines have the timestamp Last, zero if unknown (checkpoints
	// written before it existed).
	Ties int64 `json:"ties,omitempty"`
	// After is set while the window is not known: a rotation was found, and no line has been
	// served since. Until one is, only lines newer than Last are new (the first Ties of those with
	// Last's timestamp are taken as stored); the gap was reported when it was found.
	After bool `json:"after,omitempty"`
	// Begin is the timestamp of the file's first stored line: zero in checkpoints written before
	// it existed, and until a first line is stored.
	Begin time.Time `json:"begin,omitzero"`
	// Gone is when a run first found no pod of the container's pod name in a complete listing
	// of its namespace (see Dir.Maintain); zero while one is there. Retention counts from it.
	Gone time.Time `json:"gone,omitzero"`
	// Complete names the container instance (its container ID) whose log the file holds up to
	// its end: it had terminated before the stream that read it to its end was requested, and
	// that stream was proven to come from it. Its log can never change, so it is not requested
	// again. Set only when it is Instance; empty otherwise.
	Complete string `json:"complete,omitempty"`
	// Confirmed: a stream of Complete that was asked for after it was stored to its end served
	// the stored window as stored and nothing after it. Only then is it not requested again: one
	// read that ended at EOF does not prove the log's end, since the API server ends a response
	// normally when its copy from the kubelet breaks off (it drops the copy's error), and what
	// followed the break would never be read. Two reads that end at the same line do.
	Confirmed bool `json:"confirmed,omitempty"`
	// Archive, once the pod is gone, is the number n of the compressed file the log is stored
	// as, <container>.<n>.log.gz. It is saved before that file is written, so that a crash at
	// any point leaves a number the next run finishes (or, for a pod back under the name,
	// drops) rather than a second copy under another number.
	Archive int `json:"archive,omitempty"`
	// Size is the length of the log file this checkpoint covers; anything beyond was written by a run
	// that did not finish and is dropped before the next append.
	Size  int64 `json:"size"`
	Lines int64 `json:"lines"`
}

// Hash is a CRC-64 (ECMA) of the bytes added, stored as hex text. Its whole state is the value,
// so a window's hash goes on from one run to the next; the table-driven update keeps it cheap on
// the per-line path.
type Hash uint64

var crcTable = crc64.MakeTable(crc64.ECMA)

// NewHash returns the hash of no bytes.
func NewHash() Hash { return 0 }

// Add extends the hash with p.
func (h Hash) Add(p []byte) Hash { return Hash(crc64.Update(uint64(h), crcTable, p)) }

func (h Hash) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatUint(uint64(h), 16)), nil
}

func (h *Hash) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 16, 64)
	*h = Hash(v)
	return err
}

// ErrNoCheckpoint marks a log file that exists without a checkpoint: appending to it could
// duplicate lines, so it is left alone.
var ErrNoCheckpoint = errors.New("has no checkpoint")

const writeBufferSize = 256 << 10

// Log is an export in progress to one container's file. Writes are buffered; Commit makes what was
// written up to the last complete line durable together with its checkpoint.
type Log struct {
	dir *Dir
	rel string
	f   file
	// in is the log's directory, held open while the log is: the file is opened, renamed and
	// removed by its name in it, base.
	in   *dirHandle
	base string
	// dev is the device of the file's file system, if known.
	dev   uint64
	devOK bool
	// tmp is the file's name until its first checkpoint is saved ("" after): a new log is
	// written under a name of its own and renamed after its checkpoint, so that a crash never
	// leaves a log file without the checkpoint that says how much of it to keep (see open).
	tmp string
	// newDirs are the directories whose new entries the first checkpoint depends on.
	newDirs []string
	// cps holds the checkpoint, under key.
	cps *checkpoints
	key containerKey
	cp  *Checkpoint
	// buf is *bufp[:len(buf)], a write buffer from writeBuffers; nil while the log holds none
	// (see Idle).
	bufp *[]byte
	buf  []byte
	// small: the buffer is written out when full, not grown (see KeepBufferSmall).
	small bool
	size  int64 // bytes in the file
	line  int64 // logical length at the end of the last complete line
	// committed is the length the saved checkpoint covers.
	committed int64
	// unsynced is set while the file has writes or a truncation that a commit must sync first.
	unsynced bool
	// err is the first write to the file that failed. What the file holds after it is unknown
	// (part of the buffer may be lost), so nothing more is written or committed, and Close cuts
	// the file back to its checkpoint.
	err error
	// gaps wait for the next commit (AddGaps).
	gaps []Gap
	// Reset is set when the file had been removed while its checkpoint stayed.
	Reset bool
	// Archived is the checkpoint of an earlier pod of the name whose log was stored compressed
	// (see Dir.Maintain): this file starts anew beside it.
	Archived *Checkpoint
	// Recovered is a checkpoint read back from a --timestamps file that had none. Its Instance
	// is unknown: the export must prove it (the Skip lines must be served as stored) before
	// appending, and refuse the file otherwise.
	Recovered *Checkpoint
}

// OpenLog opens a container's log for appending. Bytes an interrupted run left after the
// checkpointed size are cut off; a file shorter than its checkpoint, or one without a checkpoint,
// is refused rather than risking duplicates.
func (d *Dir) OpenLog(namespace, pod, container string) (*Log, error) {
	rel, err := LogPath(namespace, pod, container)
	if err != nil {
		return nil, err
	}
	cps, err := d.checkpoints(namespace)
	if err != nil {
		return nil, err
	}
	cps.acquire()
	l := &Log{dir: d, rel: rel, cps: cps, key: containerKey{pod, container}}
	if err := l.open(); err != nil {
		if l.f != nil {
			_ = l.f.Close()
		}
		d.releaseDir(l.in)
		_ = cps.release()
		return nil, err
	}
	d.commits.open.Add(1)
	return l, nil
}

// tmpName is where a log is written until its first checkpoint. Names from the cluster never
// begin with a dot, so it cannot be another container's log.
func tmpName(rel string) string {
	return path.Join(path.Dir(rel), "."+path.Base(rel)+".new")
}

// open checks the file against its checkpoint and opens it at the checkpointed size.
//
// A crash can persist any of the run's unsynced changes and lose the others, but a checkpoint
// line is saved only after the bytes and the directory entries it covers are synced. So a log
// with a checkpoint is at least as long as it says, and bytes after that (even NULs, where the
// file system kept a size but not the data) were never committed: they are cut off. A new log
// gets its final name only after its first checkpoint is saved; found under its temporary name
// beside a checkpoint, it is renamed (the crash came between the two), and without one it is
// started again.
func (l *Log) open() error {
	d, rel := l.dir, l.rel
	var err error
	if l.cp, err = l.cps.get(l.key); err != nil {
		return err
	}
	parents, in, err := d.makeDirs(path.Dir(rel))
	if err != nil {
		return fmt.Errorf("creating %s: %w", d.Path(path.Dir(rel)), err)
	}
	l.in, l.base = in, path.Base(rel)
	if l.cp != nil && (l.cp.Archive > 0 || !l.cp.Gone.IsZero()) {
		// The pod is back under its name: the marks of the one that was gone go.
		if err := l.reopenArchived(); err != nil {
			return err
		}
	}
	l.newDirs = append(parents, path.Dir(rel))
	tmp := tmpName(rel)
	fi, err := in.fs.Lstat(l.base)
	if errors.Is(err, fs.ErrNotExist) && l.cp != nil {
		if tfi, terr := in.fs.Lstat(path.Base(tmp)); terr == nil && tfi.Mode().IsRegular() && tfi.Size() >= l.cp.Size {
			if err = in.fs.Rename(path.Base(tmp), l.base); err != nil {
				return fmt.Errorf("renaming %s to %s: %w", d.Path(tmp), d.Path(rel), err)
			}
			d.markDirty(path.Dir(rel))
			fi, err = in.fs.Lstat(l.base)
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if l.cp != nil && l.cp.Instance == "" {
			l.cp = nil // saved below by a run that found the log removed
		}
		if l.cp != nil {
			l.cp, l.Reset = nil, true
			// The old checkpoint must not cover the temporary file of the export that starts
			// again: a run killed before that export's first save would leave both, and the
			// next would take the file in under it (as after a crash between a first save and
			// the rename) with other lines. An empty checkpoint, durable before the file is
			// written, tells the next run to start again.
			if err := l.saveEmpty(); err != nil {
				return err
			}
		}
		return l.create(tmp)
	case err != nil:
		return fmt.Errorf("checking %s: %w", d.Path(rel), err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", d.Path(rel))
	case l.cp == nil && fi.Size() > 0 && !d.meta.Timestamps:
		return fmt.Errorf("%s %w: refusing to append, which could duplicate lines (move it aside to export the log again)", d.Path(rel), ErrNoCheckpoint)
	case l.cp == nil && fi.Size() > 0:
		// Stored lines carry their timestamps: the checkpoint can be read back from the file's
		// last lines, to be proven against what the API serves before anything is appended.
		if l.Recovered, err = d.recover(rel, fi.Size()); err != nil {
			return fmt.Errorf("%s %w, and none can be read back from it (%v): move it aside to export the log again", d.Path(rel), ErrNoCheckpoint, err)
		}
	case l.cp != nil && fi.Size() < l.cp.Size:
		return fmt.Errorf("%s is shorter (%d bytes) than its checkpoint (%d bytes): it was changed outside kubectl logexport (move it aside to export the log again)", d.Path(rel), fi.Size(), l.cp.Size)
	}
	if l.f, err = in.fs.OpenFile(l.base, os.O_WRONLY, 0); err != nil {
		return fmt.Errorf("opening %s: %w", d.Path(rel), err)
	}
	// Opened by name after the checks: it must still be the file that was checked.
	if ofi, err := l.f.Stat(); err != nil || !os.SameFile(fi, ofi) {
		return fmt.Errorf("%s was replaced while it was opened", d.Path(rel))
	}
	l.newDirs = nil // the file is there already
	l.dev, l.devOK = d.opts.dev(fi)
	if l.Recovered != nil {
		l.size = l.Recovered.Size
	}
	if l.cp != nil {
		l.size = l.cp.Size
		if l.cp.Instance == "" {
			l.cp = nil // the empty checkpoint of a first export that did not finish (before format 2.1)
		}
	}
	if fi.Size() != l.size {
		if err := l.f.Truncate(l.size); err != nil {
			return fmt.Errorf("restoring %s to its checkpoint: %w", d.Path(rel), err)
		}
		l.unsynced = true
	}
	l.start()
	return nil
}

// saveEmpty saves an empty checkpoint for the log and syncs it.
func (l *Log) saveEmpty() error {
	if err := l.cps.write([]*commitReq{{log: l}}); err != nil {
		return fmt.Errorf("saving the checkpoint of %s: %w", l.dir.Path(l.rel), err)
	}
	return l.cps.sync()
}

// create starts a new log under its temporary name, replacing what an earlier run left there.
func (l *Log) create(tmp string) error {
	d := l.dir
	var err error
	for range 2 {
		// O_EXCL: whatever is in the way (a file of a run that crashed, a symlink) is removed
		// rather than followed or appended to.
		if l.f, err = l.in.fs.OpenFile(path.Base(tmp), os.O_WRONLY|os.O_CREATE|os.O_EXCL, d.opts.fileMode); !errors.Is(err, fs.ErrExist) {
			break
		}
		if err = l.in.fs.Remove(path.Base(tmp)); err != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", d.Path(tmp), err)
	}
	l.tmp, l.unsynced = tmp, true
	// Made in its directory, so on its file system.
	l.dev, l.devOK = l.in.dev, l.in.devOK
	l.start()
	return nil
}

func (l *Log) start() {
	l.line, l.committed = l.size, l.size
}

// writeBufferSizes are the sizes a log's write buffer takes, one after the other as each fills
// up. A follower writes a line or a few at a time into thousands of logs at once; most logs of a
// run over thousands of pods are a few KiB (each held and churned a 256 KiB buffer before the
// step between).
var writeBufferSizes = [...]int{smallWriteBufferSize, 32 << 10, writeBufferSize}

// smallWriteBufferSize is the write buffer a log starts with.
const smallWriteBufferSize = 4 << 10

// writeBuffers keep a pool of each size: they save allocating (and zeroing) a write buffer for
// each of thousands of small logs.
var writeBuffers [len(writeBufferSizes)]sync.Pool

func init() {
	for i, n := range writeBufferSizes {
		writeBuffers[i].New = func() any { b := make([]byte, 0, n); return &b }
	}
}

// writeBufferTier returns the index in writeBufferSizes of a buffer of capacity n.
func writeBufferTier(n int) int {
	for i, size := range writeBufferSizes {
		if n <= size {
			return i
		}
	}
	return len(writeBufferSizes) - 1
}

// takeBuffer gives the log a write buffer if it has none: a small one, or, when it has one
// smaller than writeBufferSize, the next size, which takes over what it holds.
func (l *Log) takeBuffer() {
	switch {
	case l.bufp == nil:
		l.bufp = writeBuffers[0].Get().(*[]byte)
		l.buf = (*l.bufp)[:0]
	case cap(l.buf) < writeBufferSize:
		bp := writeBuffers[writeBufferTier(cap(l.buf))+1].Get().(*[]byte)
		buf := append((*bp)[:0], l.buf...)
		l.giveBuffer()
		l.bufp, l.buf = bp, buf
	}
}

// giveBuffer returns the log's write buffer, if any, to its pool; what it held is dropped.
func (l *Log) giveBuffer() {
	if l.bufp != nil {
		*l.bufp = (*l.bufp)[:0]
		writeBuffers[writeBufferTier(cap(*l.bufp))].Put(l.bufp)
	}
	l.bufp, l.buf = nil, nil
}

// KeepBufferSmall keeps the write buffer at its first, small size: it is written out when full
// rather than grown. A follower that starts (or reconnects) with thousands of containers'
// backlogs at once would otherwise hold a big buffer for every one of them.
func (l *Log) KeepBufferSmall() { l.small = true }

// Idle gives the write buffer back while it holds nothing (everything written is in the file);
// the next Write takes one again. A follower keeps a log open for each of thousands of
// containers, most of them waiting for their next line most of the time.
func (l *Log) Idle() {
	if len(l.buf) == 0 {
		l.giveBuffer()
	}
}

// namespace is the namespace of the log's container.
func (l *Log) namespace() string { return l.rel[:strings.IndexByte(l.rel, '/')] }

// Path is the host path of the log file.
func (l *Log) Path() string { return l.dir.Path(l.rel) }

// Checkpoint returns the checkpoint the file was opened with, nil for a new file.
func (l *Log) Checkpoint() *Checkpoint { return l.cp }

// Write appends p to the current line.
func (l *Log) Write(p []byte) (int, error) {
	if len(p) <= cap(l.buf)-len(l.buf) && l.bufp != nil {
		// What nearly every line takes: it fits.
		l.buf = append(l.buf, p...)
		return len(p), nil
	}
	n := len(p)
	if len(p) > 0 && l.bufp == nil {
		l.takeBuffer()
	}
	for len(p) > 0 {
		if len(l.buf) == cap(l.buf) && cap(l.buf) < writeBufferSize && !l.small {
			l.takeBuffer() // more than a line or a few: a larger one
		}
		if len(l.buf) == cap(l.buf) {
			if err := l.flush(); err != nil {
				return n - len(p), err
			}
		}
		c := copy(l.buf[len(l.buf):cap(l.buf)], p)
		l.buf = l.buf[:len(l.buf)+c]
		p = p[c:]
	}
	return n, nil
}

// EndLine marks the end of a complete line.
func (l *Log) EndLine() { l.line = l.size + int64(len(l.buf)) }

// Length is the logical length of the file up to the last complete line.
func (l *Log) Length() int64 { return l.line }

func (l *Log) flush() error {
	if l.err != nil || len(l.buf) == 0 {
		return l.err
	}
	n, err := l.f.WriteAt(l.buf, l.size)
	l.size += int64(n)
	l.buf = l.buf[:0]
	l.unsynced = true
	return l.fail(err) // an *fs.PathError, which names the file
}

func (l *Log) fail(err error) error {
	if l.err == nil {
		l.err = err
	}
	return err
}

// Commit writes out every complete line, drops a partial one, and saves cp (with its Size set) as
// the file's checkpoint, after the file is synced: a crash keeps the bytes a checkpoint covers.
// Concurrent commits of several logs share their syncs. If it fails, the previous checkpoint
// stays and the next run cuts the file back to it.
func (l *Log) Commit(cp Checkpoint) error { return l.commit(cp, false, false) }

// Finish is Commit for the last commit of an export of the log, made without holding a log
// request: it may wait a little for other logs' commits to share their syncs (GatherCommits).
func (l *Log) Finish(cp Checkpoint) error { return l.commit(cp, true, false) }

// CommitLines is Commit that keeps what was written of the current line: the checkpoint covers
// the complete lines, and the bytes after them (cut off by Close, or by the next opening after
// a crash, if the line never ends) go on being written.
func (l *Log) CommitLines(cp Checkpoint) error { return l.commit(cp, false, true) }

func (l *Log) commit(cp Checkpoint, gather, keepLine bool) error {
	if l.err != nil {
		return l.err
	}
	finish := l.DropPartial
	if keepLine {
		finish = l.Flush
	}
	if err := finish(); err != nil {
		return err
	}
	cp.Size = l.line
	r := &commitReq{log: l, dirs: l.newDirs, cp: cp, key: l.key, gaps: l.gaps, gather: gather}
	if len(l.gaps) > 0 {
		gf, err := l.dir.gapFile(l.namespace())
		if err != nil {
			return err
		}
		r.gf = gf
	}
	err := l.dir.commits.commit(r)
	if r.written {
		l.gaps = nil
		c := cp
		l.cp = &c
		l.committed = l.line
		l.newDirs = nil
	}
	if err != nil {
		return err
	}
	if l.tmp != "" {
		// The checkpoint is saved: the log takes its name. Until the directory is synced (with
		// the next round, or at Close), a crash leaves it under the temporary name, which the
		// next run renames.
		if err := l.rename(); err != nil {
			return fmt.Errorf("renaming %s: %w", l.dir.Path(l.tmp), err)
		}
		l.tmp = ""
		l.dir.markDirty(path.Dir(l.rel))
	}
	return nil
}

// rename gives the log its name.
func (l *Log) rename() error {
	in, tmp := l.in.fs, path.Base(l.tmp)
	if runtime.GOOS != "windows" {
		return in.Rename(tmp, l.base)
	}
	// Windows refuses to rename an open file (Go opens files without FILE_SHARE_DELETE).
	if err := l.f.Close(); err != nil {
		return err
	}
	name := l.base
	err := in.Rename(tmp, l.base)
	if err != nil {
		name = tmp
	}
	f, oerr := in.OpenFile(name, os.O_WRONLY, 0)
	if oerr != nil {
		// Nothing more can be written; Close has nothing to close.
		l.f = nil
		l.dir.releaseDir(l.in)
		l.in = nil
		_ = l.release()
		l.giveBuffer()
		return l.fail(errors.Join(err, oerr))
	}
	l.f = f
	return err
}

// Close closes the file. Bytes written after the last Commit are cut off, so that a failed run
// (a full disk, say) leaves the file as its checkpoint describes; a new log that was never
// committed is removed.
func (l *Log) Close() error {
	if l.f == nil {
		return nil // closed before
	}
	var err error
	if l.size > l.committed {
		err = l.f.Truncate(l.committed)
	}
	l.giveBuffer()
	err = errors.Join(err, l.f.Close())
	if l.tmp != "" && l.cp == nil {
		if rerr := l.in.fs.Remove(path.Base(l.tmp)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	l.dir.releaseDir(l.in)
	l.in = nil
	err = errors.Join(err, l.release())
	l.f = nil
	return err
}

// release lets go of the log's checkpoint file, and of its place among the logs that may commit.
func (l *Log) release() error {
	l.dir.commits.closed()
	return l.cps.release()
}

// DropPartial writes out every complete line and drops what was written of a line not complete
// yet: the stream that delivered it ended, and the next one serves the line again from its start.
func (l *Log) DropPartial() error {
	if l.err != nil {
		return l.err
	}
	partial := l.size + int64(len(l.buf)) - l.line
	if partial > 0 && partial <= int64(len(l.buf)) {
		l.buf = l.buf[:len(l.buf)-int(partial)]
		partial = 0
	}
	if err := l.flush(); err != nil {
		return err
	}
	if partial > 0 {
		if err := l.f.Truncate(l.line); err != nil {
			return l.fail(fmt.Errorf("dropping a partial line from %s: %w", l.Path(), err))
		}
		l.size = l.line
	}
	return nil
}

// Committed is the length of the file its saved checkpoint covers.
func (l *Log) Committed() int64 { return l.committed }

// Flush writes out the buffered complete lines without saving the checkpoint.
func (l *Log) Flush() error {
	if l.err != nil {
		return l.err
	}
	keep := l.size + int64(len(l.buf)) - l.line
	if keep < 0 || keep > int64(len(l.buf)) {
		return nil // the partial line's start is already in the file
	}
	n := len(l.buf) - int(keep)
	w, err := l.f.WriteAt(l.buf[:n], l.size)
	l.size += int64(w)
	l.unsynced = true
	if err != nil {
		return l.fail(err)
	}
	l.buf = l.buf[:copy(l.buf, l.buf[n:])]
	return nil
}
