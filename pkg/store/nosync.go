package store

import (
	"io/fs"
	"os"
)

// NoSync makes Open skip every sync: for runs whose durability does not matter (checking a crash
// state, which tests do many times) and for benchmarks, as the floor that durability costs on top of.
func NoSync() Option {
	return func(o *options) {
		inner := o.fs
		o.fs = func(root *os.Root) fsys { return noSyncFS{inner(root)} }
	}
}

type noSyncFS struct{ fsys }

func (noSyncFS) SyncDir(string) error { return nil }
func (noSyncFS) SyncFS() error        { return nil }
func (f noSyncFS) OpenDir(name string) (fsys, error) {
	inner, err := f.fsys.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return noSyncFS{inner}, nil
}
func (f noSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	inner, err := f.fsys.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{inner}, nil
}

type noSyncFile struct{ file }

func (noSyncFile) Sync() error { return nil }
