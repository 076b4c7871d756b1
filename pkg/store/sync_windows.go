package store

import (
	"errors"
	"io/fs"
	"os"
)

func syncData(f *os.File) error { return f.Sync() }

// syncDir does nothing: Windows cannot flush a directory handle, and NTFS journals its entries.
func syncDir(*os.File) error { return nil }

// syncFS is not used on Windows.
func syncFS(*os.File) error { return errors.ErrUnsupported }

func devOf(fs.FileInfo) (uint64, bool) { return 0, false }
