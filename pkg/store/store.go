// Package store owns an export directory: the lock that keeps two runs apart, the per-container log
// files and the checkpoints that say how much of each log is stored.
//
// Layout (all paths relative to the directory):
//
//	<namespace>/<pod>/<container>.log          the exported log
//	.logexport/meta.json                       format version and line mode of the directory
//	.logexport/lock                            held (flock) by the run that writes
//	.logexport/checkpoints/<namespace>.jsonl   the checkpoints of the namespace's log files
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

	"github.com/gofrs/flock"
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

// Meta is stored in .logexport/meta.json.
type Meta struct {
	Version int `json:"version"`
	// Timestamps tells whether stored lines keep their timestamp prefix; fixed when the directory is
	// created, since a file mixing both shapes could no longer be read back.
	Timestamps bool `json:"timestamps"`
}

// Dir is an open, locked export directory.
type Dir struct {
	path string
	root *os.Root
	lock *flock.Flock
	meta Meta

	mu sync.Mutex
	// namespaces holds the checkpoint files read so far, by namespace.
	namespaces map[string]*checkpoints
}

// Open creates (if needed) and locks the directory. timestamps must match the mode the directory was
// created with.
func Open(dir string, timestamps bool) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening output directory: %w", err)
	}
	d := &Dir{path: dir, root: root, namespaces: map[string]*checkpoints{}}
	if err := d.open(timestamps); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Dir) open(timestamps bool) error {
	if err := d.root.MkdirAll(metaDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", d.Path(metaDir), err)
	}
	if fi, err := d.root.Lstat(lockFile); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", d.Path(lockFile))
	}
	d.lock = flock.New(filepath.Join(d.path, filepath.FromSlash(lockFile)))
	ok, err := d.lock.TryLock()
	if err != nil {
		return fmt.Errorf("locking %s: %w", d.path, err)
	}
	if !ok {
		return fmt.Errorf("output directory %s is %w (lock %s)", d.path, ErrLocked, d.Path(lockFile))
	}
	if err := d.root.MkdirAll(checkpointsDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", d.Path(checkpointsDir), err)
	}
	data, err := d.root.ReadFile(metaFile)
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

func (d *Dir) saveMeta() error {
	b, _ := json.MarshalIndent(d.meta, "", "  ")
	return writeFileAtomic(d.root, metaFile, d.Path(metaFile), append(b, '\n'))
}

func modeName(ts bool) string {
	if ts {
		return "with --timestamps"
	}
	return "without --timestamps"
}

// Close closes the checkpoint files and releases the lock.
func (d *Dir) Close() error {
	var errs []error
	for _, c := range d.namespaces {
		errs = append(errs, c.close())
	}
	if d.lock != nil {
		errs = append(errs, d.lock.Unlock())
	}
	errs = append(errs, d.root.Close())
	return errors.Join(errs...)
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
	c, err := readCheckpoints(d.root, name, d.Path(name), d.meta.Timestamps)
	if err != nil {
		return nil, err
	}
	d.namespaces[namespace] = c
	return c, nil
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

// writeFileAtomic replaces name (in root) with data so that a reader (or a run after a crash)
// sees either the old or the new content, never a mix. shown names the file in messages.
func writeFileAtomic(root *os.Root, name, shown string, data []byte) error {
	tmp := name + ".tmp"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return hostPathError("write", shown, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return hostPathError("write", shown, err)
	}
	return nil
}
