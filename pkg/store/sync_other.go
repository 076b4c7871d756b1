//go:build !linux && !windows

package store

import (
	"errors"
	"io/fs"
	"os"
)

// syncData is fsync where there is no fdatasync (on darwin, os.File.Sync is F_FULLFSYNC, which
// also flushes the drive's cache).
func syncData(f *os.File) error { return f.Sync() }

func syncDir(f *os.File) error { return f.Sync() }

// syncFS is not used where there is no syncfs(2).
func syncFS(*os.File) error { return errors.ErrUnsupported }

func devOf(fs.FileInfo) (uint64, bool) { return 0, false }
