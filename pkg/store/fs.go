package store

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
)

// fsys is every change the store makes to its directory, so that a test can record a run's
// operations and rebuild the states a crash could leave (see crash_test.go). Paths are
// slash-separated and relative to the directory; the one implementation outside tests goes
// through the directory's os.Root.
type fsys interface {
	OpenFile(name string, flag int, perm fs.FileMode) (file, error)
	Lstat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
	Mkdir(name string, perm fs.FileMode) error
	Rename(oldname, newname string) error
	Remove(name string) error
	RemoveAll(name string) error
	// SyncDir makes the entries of a directory durable: created, renamed and removed names.
	SyncDir(name string) error
	// WriteFileAtomic replaces name with a file holding data, synced before the rename, so that
	// a crash leaves the old or the new file. The rename itself is durable once the directory
	// is synced.
	WriteFileAtomic(name string, data []byte, perm fs.FileMode) error
	// FS reads the directory, for walks.
	FS() fs.FS
	// OpenDir opens the directory name as an fsys of its own, whose names are relative to it
	// and whose SyncDir(".") syncs it through the handle it holds: what works in one directory
	// (a log, its temporary name, the directory's sync) then names a single path element
	// instead of having every directory on the way opened again for each operation. Like every
	// os.Root operation it follows a symlink that stays inside the tree, so the caller checks
	// that it opened the directory it had checked (see Dir.openDir).
	OpenDir(name string) (fsys, error)
	// Close closes the directory's handles.
	Close() error
	// SyncFS makes everything written to the directory's file system durable, every file's data
	// and every directory's entries (syncfs(2)); errors.ErrUnsupported where there is no such
	// call, or where it does not report write-back errors.
	SyncFS() error
}

// file is an open file of the directory. The store writes at offsets it keeps itself, so that
// a recorded write says where it landed.
type file interface {
	io.Reader
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	// Sync makes the file's data and size durable (fdatasync where the platform has it).
	Sync() error
	Stat() (fs.FileInfo, error)
	Close() error
}

// rootFS is the directory itself, or one inside it opened by OpenDir.
type rootFS struct {
	root *os.Root
	mu   sync.Mutex
	// self is the directory opened as a file, for its syncs: opened on the first, kept until
	// Close.
	self *os.File
}

func (r *rootFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	f, err := r.root.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return rootFile{f}, nil
}

func (r *rootFS) Lstat(name string) (fs.FileInfo, error)    { return r.root.Lstat(name) }
func (r *rootFS) ReadFile(name string) ([]byte, error)      { return r.root.ReadFile(name) }
func (r *rootFS) Mkdir(name string, perm fs.FileMode) error { return r.root.Mkdir(name, perm) }
func (r *rootFS) Rename(oldname, newname string) error      { return r.root.Rename(oldname, newname) }
func (r *rootFS) Remove(name string) error                  { return r.root.Remove(name) }
func (r *rootFS) RemoveAll(name string) error               { return r.root.RemoveAll(name) }
func (r *rootFS) FS() fs.FS                                 { return r.root.FS() }

func (r *rootFS) OpenDir(name string) (fsys, error) {
	sub, err := r.root.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	return &rootFS{root: sub}, nil
}

func (r *rootFS) SyncDir(name string) error {
	if name == "." {
		f, err := r.selfFile()
		if err != nil {
			return err
		}
		return syncDir(f)
	}
	f, err := r.root.Open(name)
	if err != nil {
		return err
	}
	err = syncDir(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// selfFile returns the directory opened as a file.
func (r *rootFS) selfFile() (*os.File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.self == nil {
		f, err := r.root.Open(".")
		if err != nil {
			return nil, err
		}
		r.self = f
	}
	return r.self, nil
}

func (r *rootFS) SyncFS() error {
	f, err := r.selfFile()
	if err != nil {
		return err
	}
	return syncFS(f)
}

func (r *rootFS) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.self != nil {
		err = r.self.Close()
		r.self = nil
	}
	return errors.Join(err, r.root.Close())
}

func (r *rootFS) WriteFileAtomic(name string, data []byte, perm fs.FileMode) error {
	// The temporary file must be created beside its destination, in the same directory: the
	// rename is atomic only there, and a crash leaves the temporary file where the next
	// replacement of the same file cannot miss it.
	dir, err := r.root.OpenRoot(path.Dir(name))
	if err != nil {
		return err
	}
	err = writeFileAtomic(dir, path.Base(name), data, perm)
	if cerr := dir.Close(); err == nil {
		err = cerr
	}
	return err
}

// rootFile syncs data only: the store never depends on a file's times.
type rootFile struct{ *os.File }

func (f rootFile) Sync() error { return syncData(f.File) }

// errNotDir says what a path that should be a directory is instead.
func errNotDir(fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return errSymlink
	}
	return errNotADirectory
}
