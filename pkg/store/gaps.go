package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"
)

// gapsDir holds one gap file per namespace, beside the checkpoint files: a gap is kept as long as
// the log it belongs to.
const gapsDir = metaDir + "/gaps"

func gapsPath(namespace string) string {
	return path.Join(gapsDir, namespace+".jsonl")
}

// Gap is a stretch of a container's log that is missing, as kept in its namespace's gap file.
type Gap struct {
	// From is zero when the start is unknown.
	From   time.Time  `json:"from,omitzero"`
	To     *time.Time `json:"to,omitempty"`
	Reason string     `json:"reason"`
	// Run is the ID of the run that found it (see StartRun); Found is when it was recorded.
	Run   string    `json:"run,omitempty"`
	Found time.Time `json:"found,omitzero"`
}

// same tells whether two records are of one gap: a gap recorded while still open (its end not
// known yet) is recorded again once it is closed, and the last record wins.
func (g Gap) same(o Gap) bool {
	return g.Run == o.Run && g.From.Equal(o.From) && g.Reason == o.Reason
}

// gapRecord is one line of a gap file.
type gapRecord struct {
	Pod       string `json:"pod"`
	Container string `json:"container"`
	Gap
}

// gapFile is the gap file of one namespace, appended to by the rounds of commits: the gaps an
// export found are synced with the log bytes of its commit and before its checkpoint, so that no
// crash leaves a checkpoint past a gap that is not recorded (the next run would not find it
// again); a crash in between may leave a gap recorded that the next run finds and records again.
type gapFile struct {
	mu   sync.Mutex
	file *jsonl
	// err is set once a sync failed: what the file holds on disk is unknown.
	err error
}

// gapFile returns a namespace's gap file, read on first use for its size (the lines are not
// needed to append).
func (d *Dir) gapFile(namespace string) (*gapFile, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if g, ok := d.gaps[namespace]; ok {
		return g, nil
	}
	f, err := readJSONL(d, gapsPath(namespace), func(int, []byte) error { return nil })
	if err != nil {
		return nil, err
	}
	g := &gapFile{file: f}
	d.gaps[namespace] = g
	return g, nil
}

// write appends the gaps of a round's requests, unsynced; the round syncs them with the logs.
func (g *gapFile) write(reqs []*commitReq, run string, now time.Time) error {
	var recs []gapRecord
	for _, r := range reqs {
		for _, gap := range r.gaps {
			gap.Run, gap.Found = run, now
			recs = append(recs, gapRecord{Pod: r.key.pod, Container: r.key.container, Gap: gap})
		}
	}
	b, err := jsonLines(recs)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	return g.file.write(b, len(recs))
}

func (g *gapFile) sync() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	if err := g.file.sync(); err != nil {
		g.err = fmt.Errorf("gap file %s could not be saved, nothing more is saved to it in this run: %w", g.file.shown, err)
		return g.err
	}
	return nil
}

// synced notes that a syncfs made the file durable, its entry included.
func (g *gapFile) synced() {
	g.mu.Lock()
	g.file.created = false
	g.mu.Unlock()
}

func (g *gapFile) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.file.closeFile()
}

// AddGaps records gaps of the log with its next commit: they are durable before the checkpoint
// that moves past them. If the commit fails they are kept for the next one.
func (l *Log) AddGaps(gaps ...Gap) {
	l.gaps = append(l.gaps, gaps...)
}

// RecordGaps records gaps of a container found without a commit of its log (its pod went before
// its log could be read, say), in the next round of commits.
func (d *Dir) RecordGaps(namespace, pod, container string, gaps []Gap) error {
	if len(gaps) == 0 {
		return nil
	}
	if _, err := LogPath(namespace, pod, container); err != nil {
		return err
	}
	gf, err := d.gapFile(namespace)
	if err != nil {
		return err
	}
	r := &commitReq{gf: gf, key: containerKey{pod, container}, gaps: gaps}
	return d.commits.commit(r)
}

// RemoveGaps removes the gap records of a container, for a log that is removed: call it once
// the log is gone, so that a crash in between leaves the gaps of a log that is not there rather
// than a log whose gaps are forgotten. The namespace's file is replaced atomically; a file left
// without lines is removed.
func (d *Dir) RemoveGaps(namespace, pod, container string) error {
	if _, err := LogPath(namespace, pod, container); err != nil {
		return err
	}
	gf, err := d.gapFile(namespace)
	if err != nil {
		return err
	}
	gf.mu.Lock()
	defer gf.mu.Unlock()
	name := gapsPath(namespace)
	data, err := d.fs.ReadFile(name)
	if err != nil {
		return nil // nothing recorded (or nothing readable, which the next append reports)
	}
	var keep []byte
	lines, removed := 0, false
	_ = scanData(data, func(_ int, line []byte) error {
		var r gapRecord
		// A line that does not parse is kept: it is not known to be the container's.
		if json.Unmarshal(line, &r) == nil && r.Pod == pod && r.Container == container {
			removed = true
			return nil
		}
		keep = append(append(keep, line...), '\n')
		lines++
		return nil
	})
	if !removed {
		return nil
	}
	if lines == 0 {
		_ = gf.file.closeFile()
		if err := d.fs.Remove(name); err != nil {
			return hostPathError("remove", gf.file.shown, err)
		}
		gf.file.size, gf.file.lines, gf.file.tail, gf.file.created = 0, 0, false, false
		return d.syncDir(gapsDir)
	}
	return gf.file.replace(keep, lines)
}

// parseGaps reads a gap file's lines into each container's gaps, in the order they were found,
// the last record of a gap winning. A line that does not parse is counted in bad.
func parseGaps(data []byte) (gaps map[containerKey][]Gap, bad int) {
	gaps = map[containerKey][]Gap{}
	_ = scanData(data, func(_ int, line []byte) error {
		var r gapRecord
		if err := json.Unmarshal(bytes.TrimSpace(line), &r); err != nil || !plainName(r.Pod) || !plainName(r.Container) {
			bad++
			return nil
		}
		k := containerKey{r.Pod, r.Container}
		if i := slices.IndexFunc(gaps[k], r.Gap.same); i >= 0 {
			r.Gap.Found = gaps[k][i].Found
			gaps[k][i] = r.Gap
			return nil
		}
		gaps[k] = append(gaps[k], r.Gap)
		return nil
	})
	return gaps, bad
}
