//go:build !linux && !windows

package store

import "os"

// syncData is fsync where there is no fdatasync (on darwin, os.File.Sync is F_FULLFSYNC, which
// also flushes the drive's cache).
func syncData(f *os.File) error { return f.Sync() }

func syncDir(f *os.File) error { return f.Sync() }
