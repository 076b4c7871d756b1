//go:build !windows

package store

import (
	"io/fs"
	"os"

	"github.com/google/renameio/v2"
)

// writeFileAtomic writes data to a temporary file in dir, syncs it and renames it to name.
func writeFileAtomic(dir *os.Root, name string, data []byte, perm fs.FileMode) error {
	return renameio.WriteFile(name, data, perm, renameio.WithRoot(dir))
}
