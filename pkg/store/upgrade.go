package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"k8s.io/klog/v2"
)

// stateDirV1 held the checkpoints of format version 1, one file per container:
// .logexport/state/<namespace>/<pod>/<container>.json.
const stateDirV1 = metaDir + "/state"

// upgrade converts a directory of format version 1. The namespace files are written first and the
// version recorded after them, so that a run interrupted in between converts again from the old
// files; those go last, also when an earlier run stopped before removing them.
func (d *Dir) upgrade() error {
	if d.meta.Version == FormatVersion {
		if _, err := d.fs.Lstat(stateDirV1); err == nil {
			d.removeV1()
		}
		return nil
	}
	byNamespace := map[string]cpMap{}
	err := fs.WalkDir(d.fs.FS(), stateDirV1, func(p string, e fs.DirEntry, err error) error {
		if p == stateDirV1 && errors.Is(err, fs.ErrNotExist) {
			return fs.SkipAll // no container was ever exported
		}
		if err != nil || e.IsDir() || strings.HasSuffix(p, ".tmp") {
			return err // a .tmp file is a write that never completed
		}
		parts := strings.Split(strings.TrimPrefix(p, stateDirV1+"/"), "/")
		if len(parts) != 3 || !strings.HasSuffix(parts[2], ".json") {
			return fmt.Errorf("unexpected file %s: move it out of %s", d.Path(p), d.Path(stateDirV1))
		}
		data, err := d.fs.ReadFile(p)
		if err != nil {
			return err
		}
		var v1 struct {
			Version int `json:"version"`
			Checkpoint
		}
		if err := json.Unmarshal(data, &v1); err != nil || v1.Version != 1 {
			return fmt.Errorf("checkpoint %s is corrupt (%v, version %d): move it and its log aside to export the log again", d.Path(p), err, v1.Version)
		}
		ns, k := parts[0], containerKey{parts[1], strings.TrimSuffix(parts[2], ".json")}
		if byNamespace[ns] == nil {
			byNamespace[ns] = cpMap{}
		}
		byNamespace[ns].put(k, v1.Checkpoint)
		return nil
	})
	if err != nil {
		return fmt.Errorf("converting the checkpoints of %s to format version %d: %w", d.path, FormatVersion, err)
	}
	for ns, cps := range byNamespace {
		name := checkpointsPath(ns)
		b, err := marshalRecords(cps)
		if err != nil {
			return fmt.Errorf("converting the checkpoints of %s: %w", d.Path(name), err)
		}
		if err := d.fs.WriteFileAtomic(name, b, d.opts.fileMode); err != nil {
			return hostPathError("write", d.Path(name), err)
		}
	}
	// The namespace files must be durable before the version that says to read them.
	if err := d.syncDir(checkpointsDir); err != nil {
		return err
	}
	d.meta.Version = FormatVersion
	if err := d.saveMeta(); err != nil {
		return err
	}
	d.removeV1()
	return nil
}

// removeV1 removes the converted checkpoints. They are not used any more, so failing to remove
// them does not stop the run; the next one tries again.
func (d *Dir) removeV1() {
	if err := d.fs.RemoveAll(stateDirV1); err != nil {
		klog.V(1).InfoS("could not remove the checkpoints of format version 1, which are not used any more", "dir", d.Path(stateDirV1), "err", err)
	}
}
