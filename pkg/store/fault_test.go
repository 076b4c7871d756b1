package store

import (
	"io/fs"
	"os"
	"sync"
)

// faultFS fails chosen operations, as a full disk or a failing device would.
type faultFS struct {
	fsys
	mu sync.Mutex
	// errs by operation: "replace", "syncdir", "sync", "write"; or by an operation on one file,
	// "write NAME" or "sync NAME", NAME as the file was opened.
	errs map[string]error
	// top is the faultFS of the directories opened through this one, whose errs apply (nil
	// for itself).
	top *faultFS
}

func (f *faultFS) OpenDir(name string) (fsys, error) {
	inner, err := f.fsys.OpenDir(name)
	if err != nil {
		return nil, err
	}
	top := f
	if f.top != nil {
		top = f.top
	}
	return &faultFS{fsys: inner, top: top}, nil
}

func (f *faultFS) set(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[string]error{}
	}
	f.errs[op] = err
}

func (f *faultFS) err(op string) error {
	if f.top != nil {
		return f.top.err(op)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errs[op]
}

// option makes Open go through f.
func (f *faultFS) option() Option {
	return func(o *options) {
		inner := o.fs
		o.fs = func(root *os.Root) fsys { f.fsys = inner(root); return f }
	}
}

func (f *faultFS) WriteFileAtomic(name string, data []byte, perm fs.FileMode) error {
	if err := f.err("replace"); err != nil {
		return err
	}
	return f.fsys.WriteFileAtomic(name, data, perm)
}

// SyncFS fails as the syncs it stands for would.
func (f *faultFS) SyncFS() error {
	if err := cmpErr(f.err("sync"), f.err("syncdir")); err != nil {
		return err
	}
	return f.fsys.SyncFS()
}

func (f *faultFS) SyncDir(name string) error {
	if err := f.err("syncdir"); err != nil {
		return err
	}
	return f.fsys.SyncDir(name)
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	inner, err := f.fsys.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return faultFile{inner, f, name}, nil
}

type faultFile struct {
	file
	f    *faultFS
	name string
}

// err is the error of an operation on the file, if one is set.
func (f faultFile) err(op string) error { return cmpErr(f.f.err(op+" "+f.name), f.f.err(op)) }

func (f faultFile) Sync() error {
	if err := f.err("sync"); err != nil {
		return err
	}
	return f.file.Sync()
}

func (f faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.err("write"); err != nil {
		return 0, err
	}
	return f.file.WriteAt(p, off)
}

func noSync() Option { return NoSync() }
