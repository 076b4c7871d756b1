package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sync"

	"k8s.io/klog/v2"
)

// checkpoints is the checkpoint file of one namespace: one JSON line per saved checkpoint, the last
// line of a container winning. Saving appends a line to a file held open. A file per container,
// replaced by write and rename, cost a create and a rename per save and a directory per pod,
// which was most of the cost of exporting thousands of small logs.
//
// A run killed in the middle of an append leaves a last line without its newline; it is dropped
// when the file is read, so a save is all or nothing, as the rename made it. A crash can also leave
// the file at its new size without its new bytes (XFS shows them as NULs, written out of order
// even between lines): no line kubectl logexport writes holds a NUL byte, and no append is synced
// without the ones before it, so the first line with a NUL and all after it are dropped the same
// way. A complete line that does not parse was not written by kubectl logexport, and every
// container of the namespace is refused rather than guessed at.
type checkpoints struct {
	dir   *Dir
	name  string // slash path inside the directory
	shown string // host path, for messages

	mu sync.Mutex
	// err is why the file cannot be used; every container of the namespace fails with it.
	err error
	cps map[containerKey]Checkpoint
	// f is open for writing from the first save on while logs of the namespace are open (users),
	// rather than for the whole run: -A may reach thousands of namespaces.
	f     file
	users int
	size  int64 // bytes of complete lines; a torn line after them is cut off by the next save
	// tail is set while the file holds bytes after size (a torn line, crash debris).
	tail bool
	// created is set while the file's entry in the checkpoint directory is not synced yet.
	created bool
	// lines in the file; the file is rewritten with one line per container when it has grown
	// past twice that, so that reading it stays proportional to the containers. A rewrite
	// that failed is tried again at retryAt lines.
	lines, retryAt int
}

type containerKey struct{ pod, container string }

// record is one line of a checkpoint file.
type record struct {
	Pod       string `json:"pod"`
	Container string `json:"container"`
	Checkpoint
}

// compactMin is the number of lines below which a checkpoint file is never rewritten, so that a
// follower saving one container's checkpoint every few seconds rewrites rarely.
var compactMin = 1024

func checkpointsPath(namespace string) string {
	return path.Join(checkpointsDir, namespace+".jsonl")
}

// readCheckpoints reads a namespace's checkpoint file; a missing file holds none. A file that
// cannot be read is an error; a corrupt one is kept in the result, to refuse every container of
// the namespace.
func readCheckpoints(d *Dir, name, shown string) (*checkpoints, error) {
	c := &checkpoints{dir: d, name: name, shown: shown, cps: map[containerKey]Checkpoint{}}
	data, err := d.fs.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, hostPathError("read", shown, err)
	}
	for n := 1; ; n++ {
		i := bytes.IndexByte(data[c.size:], '\n')
		if i < 0 || bytes.IndexByte(data[c.size:c.size+int64(i)], 0) >= 0 {
			break // the rest was cut short by a crash
		}
		var r record
		err := json.Unmarshal(data[c.size:c.size+int64(i)], &r)
		if err == nil && (!plainName(r.Pod) || !plainName(r.Container)) {
			err = fmt.Errorf("unsafe pod or container name %q/%q", r.Pod, r.Container)
		}
		if err != nil {
			todo := "move it and the namespace's logs aside to export them again"
			if d.meta.Timestamps {
				todo = "move it aside, and the checkpoints will be read back from the logs"
			}
			c.err = fmt.Errorf("checkpoint file %s is corrupt at line %d (%v): %s", shown, n, err, todo)
			return c, nil
		}
		c.cps[containerKey{r.Pod, r.Container}] = r.Checkpoint
		c.size += int64(i) + 1
		c.lines++
	}
	c.tail = c.size < int64(len(data))
	return c, nil
}

// acquire and release bracket the use of the file by one log.
func (c *checkpoints) acquire() {
	c.mu.Lock()
	c.users++
	c.mu.Unlock()
}

func (c *checkpoints) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users--; c.users > 0 {
		return nil
	}
	return c.closeFile()
}

// get returns a container's checkpoint, nil if it has none.
func (c *checkpoints) get(k containerKey) (*Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	cp, ok := c.cps[k]
	if !ok {
		return nil, nil
	}
	return &cp, nil
}

// save appends the checkpoints of a round of commits in one write and syncs the file. If the
// write fails, the file is cut back to what it held, so the previous checkpoints stay the last
// ones; if the sync fails, nothing more is saved to the file in this run, since what it holds on
// disk is unknown.
func (c *checkpoints) save(reqs []*commitReq) error {
	var b []byte
	for _, r := range reqs {
		line, err := json.Marshal(record{Pod: r.log.key.pod, Container: r.log.key.container, Checkpoint: r.cp})
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.f == nil {
		f, err := c.dir.fs.OpenFile(c.name, os.O_RDWR|os.O_CREATE, c.dir.opts.fileMode)
		if err != nil {
			return hostPathError("write", c.shown, err)
		}
		c.f = f
		if c.size == 0 && !c.tail {
			if fi, err := f.Stat(); err == nil && fi.Size() == 0 {
				c.created = true // maybe: the entry is synced once more than needed
			}
		}
	}
	if c.tail {
		// A line written after a torn one must not leave the torn one's end after it, where it
		// would read as a complete line.
		if err := c.f.Truncate(c.size); err != nil {
			return hostPathError("write", c.shown, err)
		}
		c.tail = false
	}
	if _, err := c.f.WriteAt(b, c.size); err != nil {
		if terr := c.f.Truncate(c.size); terr != nil {
			c.tail = true
		}
		return hostPathError("write", c.shown, err)
	}
	// Written, the lines are what the next run reads unless the system crashes: the logs must
	// not be cut back below them any more, whatever fails from here on.
	c.size += int64(len(b))
	c.lines += len(reqs)
	for _, r := range reqs {
		c.cps[r.log.key] = r.cp
		r.written = true
	}
	if err := c.f.Sync(); err != nil {
		c.err = fmt.Errorf("checkpoint file %s could not be saved, nothing more is saved to it in this run: %w", c.shown, hostPathError("sync", c.shown, err))
		return c.err
	}
	if c.created {
		if err := c.dir.syncDir(checkpointsDir); err != nil {
			return err
		}
		c.created = false
	}
	if c.lines >= max(compactMin, c.retryAt) && c.lines > 2*len(c.cps) {
		// The checkpoints are saved; after a failed rewrite the file goes on growing, and the
		// rewrite is tried again once it has grown by as much again.
		if err := c.compact(); err != nil {
			c.retryAt = c.lines + max(len(c.cps), compactMin)
			klog.V(1).InfoS("could not rewrite the checkpoint file", "file", c.shown, "err", err)
		}
	}
	return nil
}

// compact replaces the file with one line per container.
func (c *checkpoints) compact() error {
	data := marshalRecords(c.cps)
	if err := c.dir.replace(c.name, data); err != nil {
		return err
	}
	// The open file is the replaced one: the next save opens the new one.
	_ = c.f.Close()
	c.f, c.size, c.lines, c.retryAt, c.tail = nil, int64(len(data)), len(c.cps), 0, false
	return nil
}

// marshalRecords is a checkpoint file with one line per container, in a stable order.
func marshalRecords(cps map[containerKey]Checkpoint) []byte {
	keys := make([]containerKey, 0, len(cps))
	for k := range cps {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b containerKey) int {
		return cmp.Or(cmp.Compare(a.pod, b.pod), cmp.Compare(a.container, b.container))
	})
	var b []byte
	for _, k := range keys {
		line, _ := json.Marshal(record{Pod: k.pod, Container: k.container, Checkpoint: cps[k]}) // plain fields: cannot fail
		b = append(append(b, line...), '\n')
	}
	return b
}

// close closes the file, whatever logs still use it (the directory is being closed).
func (c *checkpoints) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeFile()
}

// closeFile closes the file if it is open; c.mu is held.
func (c *checkpoints) closeFile() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
