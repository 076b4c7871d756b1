//go:build !windows

package store

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Files and directories are the owner's only, unless the group is to read them too.
func TestModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	tests := []struct {
		name          string
		opts          []Option
		file, dirMode fs.FileMode
	}{
		{"default", nil, 0o600, 0o700},
		{"group readable", []Option{GroupReadable()}, 0o640, 0o750},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			d, err := Open(dir, false, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			commit(t, d, "ns", "p", "c", Checkpoint{Instance: "i"})
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			for rel, want := range map[string]fs.FileMode{
				".": tt.dirMode, "ns": tt.dirMode, "ns/p": tt.dirMode, ".logexport": tt.dirMode, ".logexport/checkpoints": tt.dirMode,
				"ns/p/c.log": tt.file, ".logexport/meta.json": tt.file, ".logexport/lock": tt.file, ".logexport/checkpoints/ns.jsonl": tt.file,
			} {
				fi, err := os.Stat(filepath.Join(dir, rel))
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("%s: %v, want %v", rel, got, want)
				}
			}
		})
	}
}
