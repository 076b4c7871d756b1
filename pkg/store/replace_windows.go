package store

import (
	"io/fs"
	"os"
)

// writeFileAtomic writes data to a temporary file in dir, syncs it and renames it to name: what
// renameio does elsewhere, which does not build on Windows (os.Rename replaces there too).
func writeFileAtomic(dir *os.Root, name string, data []byte, perm fs.FileMode) error {
	tmp := "." + name + ".tmp"
	f, err := dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dir.Rename(tmp, name)
	}
	if err != nil {
		_ = dir.Remove(tmp)
	}
	return err
}
