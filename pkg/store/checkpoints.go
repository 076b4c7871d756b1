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
// when the file is read, so a save is all or nothing, as the rename made it. A complete line that
// does not parse was not written by kubectl logexport, and every container of the namespace is
// refused rather than guessed at.
type checkpoints struct {
	root  *os.Root
	name  string // slash path inside root
	shown string // host path, for messages

	mu sync.Mutex
	// err is why the file cannot be used; every container of the namespace fails with it.
	err error
	cps map[containerKey]Checkpoint
	// f is open for writing from the first save on while logs of the namespace are open (users),
	// rather than for the whole run: -A may reach thousands of namespaces.
	f     *os.File
	users int
	size  int64 // bytes of complete lines; a torn line after them is overwritten
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
const compactMin = 1024

func checkpointsPath(namespace string) string {
	return path.Join(checkpointsDir, namespace+".jsonl")
}

// readCheckpoints reads a namespace's checkpoint file; a missing file holds none. A file that
// cannot be read is an error; a corrupt one is kept in the result, to refuse every container of
// the namespace.
func readCheckpoints(root *os.Root, name, shown string, timestamps bool) (*checkpoints, error) {
	c := &checkpoints{root: root, name: name, shown: shown, cps: map[containerKey]Checkpoint{}}
	data, err := root.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, hostPathError("read", shown, err)
	}
	for n := 1; ; n++ {
		i := bytes.IndexByte(data[c.size:], '\n')
		if i < 0 {
			break // the rest is a line torn by a run that was killed
		}
		var r record
		err := json.Unmarshal(data[c.size:c.size+int64(i)], &r)
		if err == nil && (!plainName(r.Pod) || !plainName(r.Container)) {
			err = fmt.Errorf("unsafe pod or container name %q/%q", r.Pod, r.Container)
		}
		if err != nil {
			todo := "move it and the namespace's logs aside to export them again"
			if timestamps {
				todo = "move it aside, and the checkpoints will be read back from the logs"
			}
			c.err = fmt.Errorf("checkpoint file %s is corrupt at line %d (%v): %s", shown, n, err, todo)
			return c, nil
		}
		c.cps[containerKey{r.Pod, r.Container}] = r.Checkpoint
		c.size += int64(i) + 1
		c.lines++
	}
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

// save appends a container's checkpoint. If the write fails, the file is cut back to what it held,
// so the previous checkpoint stays the last one.
func (c *checkpoints) save(k containerKey, cp Checkpoint) error {
	b, err := json.Marshal(record{Pod: k.pod, Container: k.container, Checkpoint: cp})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.f == nil {
		if c.f, err = c.root.OpenFile(c.name, os.O_WRONLY|os.O_CREATE, 0o644); err != nil {
			return hostPathError("write", c.shown, err)
		}
	}
	if _, err := c.f.WriteAt(b, c.size); err != nil {
		_ = c.f.Truncate(c.size)
		return err // an *fs.PathError, which names the file
	}
	c.size += int64(len(b))
	c.lines++
	c.cps[k] = cp
	if c.lines >= max(compactMin, c.retryAt) && c.lines > 2*len(c.cps) {
		// The checkpoint is saved; after a failed rewrite the file goes on growing, and the
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
	if err := writeFileAtomic(c.root, c.name, c.shown, data); err != nil {
		return err
	}
	// The open file is the replaced one: the next save opens the new one.
	_ = c.f.Close()
	c.f, c.size, c.lines, c.retryAt = nil, int64(len(data)), len(c.cps), 0
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
