package store

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sync"

	"k8s.io/klog/v2"
)

// checkpoints is the checkpoint file of one namespace: one JSON line per saved checkpoint, the last
// line of a container winning. Saving appends a line to a file held open (see jsonl). A file per
// container, replaced by write and rename, cost a create and a rename per save and a directory per
// pod, which was most of the cost of exporting thousands of small logs. A complete line that does
// not parse was not written by kubectl logexport, and every container of the namespace is refused
// rather than guessed at.
type checkpoints struct {
	mu sync.Mutex
	// file is the checkpoint file; it is open for writing from the first save on while logs of
	// the namespace are open (users), rather than for the whole run: -A may reach thousands of
	// namespaces.
	file  *jsonl
	users int
	// err is why the file cannot be used; every container of the namespace fails with it.
	err error
	cps cpMap
	// retryAt: the file is rewritten with one line per container when it has grown past twice
	// that, so that reading it stays proportional to the containers. A rewrite that failed is
	// tried again at retryAt lines.
	retryAt int
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
func readCheckpoints(d *Dir, name string) (*checkpoints, error) {
	c := &checkpoints{cps: cpMap{}}
	f, err := readJSONL(d, name, func(n int, line []byte) error {
		r, err := parseRecord(line)
		if err != nil {
			todo := "move it and the namespace's logs aside to export them again"
			if d.meta.Timestamps {
				todo = "move it aside, and the checkpoints will be read back from the logs"
			}
			return fmt.Errorf("checkpoint file %s is corrupt at line %d (%v): %s", d.Path(name), n, err, todo)
		}
		c.cps.put(containerKey{r.Pod, r.Container}, r.Checkpoint)
		return nil
	})
	if f == nil {
		return nil, err
	}
	c.file, c.err = f, err
	return c, nil
}

// parseRecord parses a line of a checkpoint file.
func parseRecord(line []byte) (record, error) {
	var r record
	err := json.Unmarshal(line, &r)
	if err == nil && (!plainName(r.Pod) || !plainName(r.Container)) {
		err = fmt.Errorf("unsafe pod or container name %q/%q", r.Pod, r.Container)
	}
	return r, err
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
	p, ok := c.cps.get(k)
	if !ok {
		return nil, nil
	}
	cp := p.unpack()
	return &cp, nil
}

// write appends the checkpoints of a round of commits in one write, unsynced: the round that
// follows syncs it with its logs if one is queued already (see committer), else sync does. If the
// write fails, the file is cut back to what it held, so the previous checkpoints stay the last ones.
func (c *checkpoints) write(reqs []*commitReq) error {
	var b []byte
	for _, r := range reqs {
		var err error
		if b, err = appendRecord(b, r.log.key, r.cp); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if err := c.file.write(b, len(reqs)); err != nil {
		return err
	}
	// Written, the lines are what the next run reads unless the system crashes: the logs must
	// not be cut back below them any more, whatever fails from here on.
	for _, r := range reqs {
		c.cps.put(r.log.key, r.cp)
		r.written = true
	}
	return nil
}

// sync makes the written checkpoints durable. If it fails, nothing more is saved to the file in
// this run, since what it holds on disk is unknown.
func (c *checkpoints) sync() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if err := c.file.syncData(); err != nil {
		c.err = fmt.Errorf("checkpoint file %s could not be saved, nothing more is saved to it in this run: %w", c.file.shown, err)
		return c.err
	}
	if err := c.file.syncEntry(); err != nil {
		return err
	}
	c.compactIfDue()
	return nil
}

// synced notes that a syncfs made the file durable, its entry included.
func (c *checkpoints) synced() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.file.created = false
	c.compactIfDue()
}

// compactIfDue rewrites the file once it holds more than twice the lines it needs; c.mu is held
// and every line is durable.
func (c *checkpoints) compactIfDue() {
	if c.file.lines >= max(compactMin, c.retryAt) && c.file.lines > 2*len(c.cps) {
		// The checkpoints are saved; after a failed rewrite the file goes on growing, and the
		// rewrite is tried again once it has grown by as much again.
		if err := c.compact(); err != nil {
			c.retryAt = c.file.lines + max(len(c.cps), compactMin)
			klog.V(1).InfoS("could not rewrite the checkpoint file", "file", c.file.shown, "err", err)
		}
	}
}

// compact replaces the file with one line per container.
func (c *checkpoints) compact() error {
	b, err := marshalRecords(c.cps)
	if err != nil {
		return err
	}
	if err := c.file.replace(b, len(c.cps)); err != nil {
		return err
	}
	c.retryAt = 0
	return nil
}

// marshalRecords is a checkpoint file with one line per container, in a stable order. It fails
// if a checkpoint cannot be marshalled (a time JSON cannot hold once in UTC, past the year 9999):
// the file is then left as it is, rather than rewritten without that container's line.
func marshalRecords(cps cpMap) ([]byte, error) {
	type entry struct {
		k containerKey
		p packed
	}
	all := make([]entry, 0, len(cps))
	cps.all(func(k containerKey, p packed) { all = append(all, entry{k, p}) })
	slices.SortFunc(all, func(a, b entry) int { return compareKeys(a.k, b.k) })
	var b []byte
	for _, e := range all {
		var err error
		if b, err = appendRecord(b, e.k, e.p.unpack()); err != nil {
			return nil, fmt.Errorf("checkpoint of %s/%s: %w", e.k.pod, e.k.container, err)
		}
	}
	return b, nil
}

// appendRecord appends the line of a checkpoint file that saves cp as k's.
func appendRecord(b []byte, k containerKey, cp Checkpoint) ([]byte, error) {
	line, err := json.Marshal(record{Pod: k.pod, Container: k.container, Checkpoint: cp})
	if err != nil {
		return b, err
	}
	return append(append(b, line...), '\n'), nil
}

// close closes the file, whatever logs still use it (the directory is being closed).
func (c *checkpoints) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeFile()
}

// closeFile closes the file if it is open; c.mu is held.
func (c *checkpoints) closeFile() error {
	if c.file == nil {
		return nil
	}
	return c.file.closeFile()
}
