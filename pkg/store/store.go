// Package store owns an export directory: the lock that keeps two runs apart, the per-container log
// files and the checkpoints that say how much of each log is stored.
//
// Layout (all paths relative to the directory):
//
//	<namespace>/<pod>/<container>.log          the exported log
//	.logexport/meta.json                       format version and line mode of the directory
//	.logexport/lock                            held (flock) by the run that writes
//	.logexport/checkpoints/<namespace>.jsonl   the checkpoints of the namespace's log files
//	.logexport/gaps/<namespace>.jsonl          the gaps found in the namespace's logs, kept with them
//	.logexport/journal.jsonl                   the run journal: a line when a run starts and ends
//
// Every path is opened through an os.Root, so no name from the cluster and no symlink planted in the
// directory can make a write land outside it.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FormatVersion is the version of the layout and of the meta and checkpoint files. Version 1 kept
// one checkpoint file per container under .logexport/state; Open converts it.
const FormatVersion = 2

const (
	metaDir        = ".logexport"
	metaFile       = metaDir + "/meta.json"
	lockFile       = metaDir + "/lock"
	checkpointsDir = metaDir + "/checkpoints"
	logSuffix      = ".log"
)

// ErrLocked is returned by Open when another run holds the directory.
var ErrLocked = errors.New("locked by another kubectl logexport run")

var (
	errSymlink       = errors.New("is a symlink, which kubectl logexport does not follow")
	errNotADirectory = errors.New("is not a directory")
)

// Meta is stored in .logexport/meta.json.
type Meta struct {
	Version int `json:"version"`
	// Timestamps tells whether stored lines keep their timestamp prefix; fixed when the directory is
	// created, since a file mixing both shapes could no longer be read back.
	Timestamps bool `json:"timestamps"`
}

// Option changes how Open sets up the directory.
type Option func(*options)

type options struct {
	fileMode, dirMode fs.FileMode
	// fs wraps the directory's root; tests record through it.
	fs func(*os.Root) fsys
	// syncFSMin is the number of syncs in a round of commits from which one syncfs replaces
	// them (see committer.round).
	syncFSMin int
	// dev is the device of a file system object (devOf; tests pretend some are elsewhere).
	dev func(fs.FileInfo) (uint64, bool)
	// gatherN and gatherWait: see GatherCommits.
	gatherN    int
	gatherWait time.Duration
}

// GroupReadable creates files 0640 and directories 0750 rather than 0600 and 0700, for teams that
// read the logs through a group. Logs carry tokens and personal data: the default lets only the
// owner read them.
func GroupReadable() Option {
	return func(o *options) { o.fileMode, o.dirMode = 0o640, 0o750 }
}

// GatherCommits lets a round of commits wait, for at most wait, until n commits have joined it
// while other logs are open: fewer, larger rounds, each with its syncs. For a run that exports
// many logs once (not a follower, whose commits hold its streams' reading), with n about the
// number of logs written at once.
func GatherCommits(n int, wait time.Duration) Option {
	return func(o *options) { o.gatherN, o.gatherWait = n, wait }
}

// Dir is an open, locked export directory.
type Dir struct {
	path string
	root *os.Root
	fs   fsys
	lock *os.File
	meta Meta
	opts options
	// commits batches the syncs of concurrent commits.
	commits committer

	journalMu sync.Mutex
	mu        sync.Mutex
	// namespaces holds the checkpoint files read so far, by namespace.
	namespaces map[string]*checkpoints
	// gaps holds the gap files written to so far, by namespace.
	gaps map[string]*gapFile
	// journal is the run journal, from StartRun on, appended to under journalMu; run is the
	// run's ID.
	journal *jsonl
	run     string
	// dirty are directories with entries renamed since they were last synced, whose sync can
	// wait for the next round of commits or Close: until then a crash leaves a log under its
	// temporary name, which the next run renames.
	dirty map[string]bool
	// fresh are the directories made in this run whose entry in their parent may not be synced
	// yet, with the value of seq when they were made; seq counts the directory syncs begun.
	fresh map[string]uint64
	seq   uint64
	// dirs are the directories held open, by path; those no longer in use are kept (up to
	// maxIdleDirs) for the next log of the same pod or namespace, and for their syncs.
	dirs map[string]*dirHandle
	idle int
	// dev is the device of the directory's file system, if known: a round's syncs are replaced
	// by one syncfs only when everything they sync is on it.
	dev   uint64
	devOK bool
	// noSyncFS is set once syncfs turned out not to be available.
	noSyncFS atomic.Bool
}

// dirHandle is a directory of the tree held open: its logs are opened, checked and renamed, and
// it is synced, through it, without resolving its path again.
type dirHandle struct {
	path string
	fs   fsys
	fi   fs.FileInfo // what it was checked to be when opened
	// dev is the device of its file system, if known.
	dev   uint64
	devOK bool
	refs  int
	// stale is set when its path names another directory now: it is closed when no longer used.
	stale bool
}

// maxIdleDirs bounds the directories kept open while no log uses them.
const maxIdleDirs = 64

// Open creates (if needed) and locks the directory. timestamps must match the mode the directory was
// created with.
func Open(dir string, timestamps bool, opts ...Option) (*Dir, error) {
	o := options{fileMode: 0o600, dirMode: 0o700, fs: func(r *os.Root) fsys { return &rootFS{root: r} }, syncFSMin: syncFSMin, dev: devOf}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, o.dirMode); err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening output directory: %w", err)
	}
	d := &Dir{path: dir, root: root, fs: o.fs(root), opts: o, namespaces: map[string]*checkpoints{}, gaps: map[string]*gapFile{}, dirty: map[string]bool{}, fresh: map[string]uint64{}, dirs: map[string]*dirHandle{}}
	d.commits.dir = d
	if fi, err := d.fs.Lstat("."); err == nil {
		d.dev, d.devOK = o.dev(fi)
	}
	if err := d.open(timestamps); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Dir) open(timestamps bool) error {
	if err := d.mkdirs(metaDir); err != nil {
		return err
	}
	if err := d.tryLock(); err != nil {
		return err
	}
	for _, dir := range []string{checkpointsDir, gapsDir} {
		if err := d.mkdirs(dir); err != nil {
			return err
		}
	}
	data, err := d.fs.ReadFile(metaFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.meta = Meta{Version: FormatVersion, Timestamps: timestamps}
		return d.saveMeta()
	case err != nil:
		return fmt.Errorf("reading %s: %w", d.Path(metaFile), err)
	}
	if err := json.Unmarshal(data, &d.meta); err != nil {
		return fmt.Errorf("reading %s: %w", d.Path(metaFile), err)
	}
	if d.meta.Version > FormatVersion || d.meta.Version < 1 {
		return fmt.Errorf("%s has format version %d, this kubectl logexport reads version %d", d.Path(metaFile), d.meta.Version, FormatVersion)
	}
	if d.meta.Timestamps != timestamps {
		m := modeName(d.meta.Timestamps)
		return fmt.Errorf("%s was created %s: run again %s, or use another directory", d.path, m, m)
	}
	return d.upgrade()
}

// tryLock locks the directory through its root, so that no symlink swapped in can point the lock
// elsewhere, and checks what it opened rather than what a path named a moment before.
func (d *Dir) tryLock() error {
	f, err := d.root.OpenFile(lockFile, os.O_RDWR|os.O_CREATE, d.opts.fileMode)
	if err != nil {
		return fmt.Errorf("opening the lock: %w", hostPathError("open", d.Path(lockFile), err))
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			return fmt.Errorf("%s is not a regular file", d.Path(lockFile))
		}
		return fmt.Errorf("opening the lock: %w", err)
	}
	ok, err := tryLock(f)
	if err != nil || !ok {
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("locking %s: %w", d.path, err)
	}
	if !ok {
		return fmt.Errorf("output directory %s is %w (lock %s)", d.path, ErrLocked, d.Path(lockFile))
	}
	d.lock = f
	return nil
}

// mkdirs creates the missing directories of rel and makes their entries durable.
func (d *Dir) mkdirs(rel string) error {
	parents, h, err := d.makeDirs(rel)
	d.releaseDir(h)
	if err == nil {
		err = d.syncDirs(parents)
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", d.Path(rel), err)
	}
	return nil
}

// makeDirs creates the missing directories of dir, one level at a time so that a symlink on the
// way is refused rather than followed, even one that stays inside the directory (it would let two
// containers share a file). It returns the directories to sync before anything in dir may be
// counted on: the parents of those it created and of those another log created in this run
// whose entry is not synced yet; and dir held open (nil for "."), to be released by the caller.
func (d *Dir) makeDirs(dir string) (parents []string, h *dirHandle, err error) {
	if dir == "." {
		return nil, nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Each level is checked and made through the one above, held open: one path element per
	// operation.
	var up *dirHandle
	defer func() {
		if err != nil {
			d.releaseDirLocked(up)
		}
	}()
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		in, name := d.fs, p
		if up != nil {
			in, name = up.fs, path.Base(p)
		}
		fi, err := in.Lstat(name)
		switch {
		case err == nil && fi.IsDir():
			if _, ok := d.fresh[p]; ok {
				parents = append(parents, path.Dir(p))
			}
		case err == nil:
			return nil, nil, &fs.PathError{Op: "mkdir", Path: p, Err: errNotDir(fi)}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, nil, err
		default:
			if err := in.Mkdir(name, d.opts.dirMode); err != nil {
				return nil, nil, err
			}
			d.fresh[p] = d.seq
			parents = append(parents, path.Dir(p))
			if fi, err = in.Lstat(name); err != nil {
				return nil, nil, err
			}
		}
		next, err := d.openDir(p, in, name, fi)
		if err != nil {
			return nil, nil, err
		}
		d.releaseDirLocked(up)
		up = next
	}
	return parents, up, nil
}

// openDir returns the directory p held open, opened as name in the fsys in, and checked to be
// the directory fi (just read from its path with Lstat) rather than whatever a symlink swapped
// in since leads to. d.mu is held.
func (d *Dir) openDir(p string, in fsys, name string, fi fs.FileInfo) (*dirHandle, error) {
	if h, ok := d.dirs[p]; ok {
		if os.SameFile(h.fi, fi) {
			if h.refs == 0 {
				d.idle--
			}
			h.refs++
			return h, nil
		}
		// Another directory has the path now (moved aside and made again, say).
		h.stale = true
		delete(d.dirs, p)
		if h.refs == 0 {
			d.idle--
			_ = h.fs.Close()
		}
	}
	sub, err := in.OpenDir(name)
	if err != nil {
		return nil, err
	}
	if ofi, err := sub.Lstat("."); err != nil || !os.SameFile(fi, ofi) {
		_ = sub.Close()
		if err == nil {
			err = errors.New("was replaced while it was opened")
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	h := &dirHandle{path: p, fs: sub, fi: fi, refs: 1}
	h.dev, h.devOK = d.opts.dev(fi)
	d.dirs[p] = h
	return h, nil
}

// heldDir returns the directory p if it is held open, with one more use; nil if it is not.
func (d *Dir) heldDir(p string) *dirHandle {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.dirs[p]
	if h != nil {
		if h.refs == 0 {
			d.idle--
		}
		h.refs++
	}
	return h
}

func (d *Dir) releaseDir(h *dirHandle) {
	if h == nil {
		return
	}
	d.mu.Lock()
	d.releaseDirLocked(h)
	d.mu.Unlock()
}

// releaseDirLocked ends a use of h; d.mu is held. Past maxIdleDirs unused directories, the
// unused ones whose renames are synced are closed.
func (d *Dir) releaseDirLocked(h *dirHandle) {
	if h == nil {
		return
	}
	if h.refs--; h.refs > 0 {
		return
	}
	if h.stale {
		_ = h.fs.Close()
		return
	}
	if d.idle++; d.idle <= maxIdleDirs {
		return
	}
	for p, o := range d.dirs {
		if o.refs == 0 && !d.dirty[p] {
			_ = o.fs.Close()
			delete(d.dirs, p)
			if d.idle--; d.idle <= maxIdleDirs/2 {
				return
			}
		}
	}
}

// syncDir syncs a directory's entries; the directories made in this run that it names are
// durable from then on. A directory held open is synced through its handle.
func (d *Dir) syncDir(dir string) error {
	h := d.heldDir(dir)
	defer d.releaseDir(h)
	start := d.syncBegins()
	var err error
	if h != nil {
		err = h.fs.SyncDir(".")
	} else {
		err = d.fs.SyncDir(dir)
	}
	if err != nil {
		return hostPathError("sync", d.Path(dir), err)
	}
	d.synced(dir, start)
	return nil
}

// syncBegins counts a sync of directories about to begin and returns its number.
func (d *Dir) syncBegins() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	return d.seq - 1
}

// synced notes that dir was synced by the sync numbered start: the directories made in it
// before that sync began are durable.
func (d *Dir) synced(dir string, start uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, made := range d.fresh {
		if made <= start && path.Dir(p) == dir {
			delete(d.fresh, p) // made before the sync began
		}
	}
}

// dirDev returns the device of a directory, if it is known: the directory's own, or one held open.
func (d *Dir) dirDev(dir string) (uint64, bool) {
	if dir == "." {
		return d.dev, d.devOK
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if h := d.dirs[dir]; h != nil {
		return h.dev, h.devOK
	}
	return 0, false
}

// syncDirs syncs the directories, concurrently: on a journaling file system, syncs that overlap
// share a journal commit.
func (d *Dir) syncDirs(dirs []string) error {
	return parallel(len(dirs), func(i int) error { return d.syncDir(dirs[i]) })
}

// replace writes a file atomically and makes the rename durable.
func (d *Dir) replace(rel string, data []byte) error {
	if err := d.fs.WriteFileAtomic(rel, data, d.opts.fileMode); err != nil {
		return hostPathError("write", d.Path(rel), err)
	}
	return d.syncDir(path.Dir(rel))
}

func (d *Dir) saveMeta() error {
	b, _ := json.MarshalIndent(d.meta, "", "  ")
	return d.replace(metaFile, append(b, '\n'))
}

func modeName(ts bool) string {
	if ts {
		return "with --timestamps"
	}
	return "without --timestamps"
}

// Close closes the checkpoint files, makes renames durable and releases the lock. Its error
// matters: a sync that failed here means the last commits may not survive a crash.
func (d *Dir) Close() error {
	var errs []error
	d.mu.Lock()
	for _, c := range d.namespaces {
		errs = append(errs, c.close())
	}
	for _, g := range d.gaps {
		errs = append(errs, g.close())
	}
	d.mu.Unlock()
	d.journalMu.Lock()
	if d.journal != nil {
		errs = append(errs, d.journal.closeFile())
	}
	d.journalMu.Unlock()
	errs = append(errs, d.syncDirty())
	d.mu.Lock()
	for p, h := range d.dirs {
		if h.refs == 0 {
			errs = append(errs, h.fs.Close())
		} else {
			h.stale = true // closed by the log that still uses it
		}
		delete(d.dirs, p)
	}
	d.idle = 0
	d.mu.Unlock()
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
		d.lock = nil
	}
	if d.root != nil {
		errs = append(errs, d.fs.Close()) // and the root
		d.root = nil
	}
	return errors.Join(errs...)
}

// markDirty notes a directory whose renamed entries still have to be synced.
func (d *Dir) markDirty(dir string) {
	d.mu.Lock()
	d.dirty[dir] = true
	d.mu.Unlock()
}

// syncDirty syncs the directories marked dirty; those that fail stay marked.
func (d *Dir) syncDirty() error {
	d.mu.Lock()
	dirs := make([]string, 0, len(d.dirty))
	for dir := range d.dirty {
		dirs = append(dirs, dir)
	}
	clear(d.dirty)
	d.mu.Unlock()
	if len(dirs) == 0 {
		return nil
	}
	err := d.syncDirs(dirs)
	if err != nil {
		for _, dir := range dirs {
			d.markDirty(dir)
		}
	}
	return err
}

// Path returns the host path of a slash-separated path inside the directory, for messages.
func (d *Dir) Path(rel string) string {
	return filepath.Join(d.path, filepath.FromSlash(rel))
}

// Meta returns the directory's meta data.
func (d *Dir) Meta() Meta { return d.meta }

// LogPath returns the slash-separated path of a container's log inside the directory. Names come
// from the cluster; each must be a single, plain path element.
func LogPath(namespace, pod, container string) (string, error) {
	for _, n := range []string{namespace, pod, container} {
		if err := checkName(n); err != nil {
			return "", err
		}
	}
	return path.Join(namespace, pod, container+logSuffix), nil
}

// checkpoints returns a namespace's checkpoints, read on first use. A file that could not be read
// is read again next time; one that is corrupt stays refused for the run.
func (d *Dir) checkpoints(namespace string) (*checkpoints, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.namespaces[namespace]; ok {
		return c, nil
	}
	name := checkpointsPath(namespace)
	c, err := readCheckpoints(d, name)
	if err != nil {
		return nil, err
	}
	d.namespaces[namespace] = c
	return c, nil
}

// Checkpoint returns a container's saved checkpoint, nil if it has none, without opening (or
// creating) its log.
func (d *Dir) Checkpoint(namespace, pod, container string) (*Checkpoint, error) {
	if _, err := LogPath(namespace, pod, container); err != nil {
		return nil, err
	}
	cps, err := d.checkpoints(namespace)
	if err != nil {
		return nil, err
	}
	return cps.get(containerKey{pod, container})
}

func checkName(n string) error {
	if !plainName(n) {
		return fmt.Errorf("refusing unsafe name %q from the cluster", n)
	}
	return nil
}

// plainName tells whether n is a single path element that is safe to create.
func plainName(n string) bool {
	return n != "" && !strings.HasPrefix(n, ".") && !strings.ContainsAny(n, "/\\\x00") && len(n) <= 253
}

// hostPathError names the host path in err; os.Root reports paths relative to the directory.
func hostPathError(op, shown string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &fs.PathError{Op: op, Path: shown, Err: err}
}
