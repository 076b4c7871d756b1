// Package pull copies the logs an export stored in a bucket into a local directory, as a local
// export stores them (DIR/NAMESPACE/POD/CONTAINER.log, with the bucket's checkpoints), and
// again and again fetches only the segments that are new.
package pull

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// Options select what is pulled.
type Options struct {
	// Pods, if set, keeps the pods whose name one of them matches.
	Pods []*regexp.Regexp
	// Namespace, if set, keeps that namespace only.
	Namespace string
	// Since, if set, starts a container pulled for the first time at its first segment of
	// that day or later.
	Since time.Time
}

// Result is what a pull did to one container's log.
type Result struct {
	bucket.ContainerRef
	File  string
	Lines int64
	Bytes int64
	// UpToDate: nothing was new.
	UpToDate bool
	Err      error
}

// Puller copies from Src into Dst.
type Puller struct {
	Bucket objstore.Bucket
	Src    *bucket.Dest
	Dst    *store.Dir
	// Root is Dst's host path, where the pull keeps its state (see state).
	Root string
	Options
}

// stateFile records, for each container pulled, the byte of the bucket's log its local file
// starts at: zero unless a first pull started later (Since). It is saved before a container's
// first commit, so a local file is never without its start.
const stateFile = ".logexport/pull.json"

type state struct {
	Base map[string]int64 `json:"base"`
	// Last is the key of the last segment pulled of each container: the next pull lists only
	// the keys after it. Saved after the pulls (a pull that dies first lists more next time).
	Last map[string]string `json:"last,omitempty"`
}

// Pull brings every selected container's local file up to the bucket's checkpoint.
func (p *Puller) Pull(ctx context.Context) ([]Result, error) {
	refs, err := p.Src.Containers()
	if err != nil {
		return nil, err
	}
	st, err := p.readState()
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, r := range refs {
		if !p.selected(r) {
			continue
		}
		if ctx.Err() != nil {
			return out, errors.Join(ctx.Err(), p.saveState(st))
		}
		res := p.pull(ctx, r, st)
		out = append(out, res)
	}
	return out, p.saveState(st)
}

func (p *Puller) selected(r bucket.ContainerRef) bool {
	if p.Namespace != "" && r.Namespace != p.Namespace {
		return false
	}
	if len(p.Pods) == 0 {
		return true
	}
	for _, re := range p.Pods {
		if re.MatchString(r.Pod) {
			return true
		}
	}
	return false
}

func (p *Puller) pull(ctx context.Context, r bucket.ContainerRef, st *state) (res Result) {
	res.ContainerRef = r
	cp, err := p.Src.Checkpoint(r.Namespace, r.Pod, r.Container)
	if err != nil || cp == nil {
		res.Err = err
		return res
	}
	log, err := p.Dst.OpenLog(r.Namespace, r.Pod, r.Container)
	if err != nil {
		res.Err = err
		return res
	}
	res.File = log.Path()
	defer func() {
		if cerr := log.Close(); cerr != nil && res.Err == nil {
			res.Err = cerr
		}
	}()
	key := r.Namespace + "/" + r.Pod + "/" + r.Container
	local := log.Checkpoint()
	base, known := st.Base[key]
	switch {
	case local != nil && !known:
		base = 0 // pulled whole, or exported here: the file is the log from its start
	case local == nil && !known:
		if base, err = p.firstByte(r); err != nil {
			res.Err = err
			return res
		}
		st.Base[key] = base
		if err := p.saveState(st); err != nil {
			res.Err = err
			return res
		}
	}
	at := base + log.Length()
	if local != nil && at == cp.Size && sameCheckpoint(*local, *cp) {
		res.UpToDate = true
		return res
	}
	if at > cp.Size {
		res.Err = fmt.Errorf("%s holds %d bytes of the log, more than the bucket's checkpoint (%d): it was not pulled from %s", res.File, at-base, cp.Size-base, p.Src.URL(""))
		return res
	}
	// Only the keys after the last segment pulled, if it ends where the file does.
	after := st.Last[key]
	if _, end, ok := bucket.SegmentEnd(after); !ok || end != at {
		after = ""
	}
	segs, cp, err := p.Src.SegmentsFrom(r.Namespace, r.Pod, r.Container, at, after)
	if err != nil {
		res.Err = fmt.Errorf("%w (the local file %s ends at byte %d of the log)", err, res.File, at)
		return res
	}
	for _, seg := range segs {
		data, err := p.get(ctx, seg.Key)
		if err != nil {
			res.Err = err
			return res
		}
		if _, err := log.Write(data); err != nil {
			res.Err = err
			return res
		}
		log.EndLine()
		res.Bytes += int64(len(data))
		res.Lines += int64(bytes.Count(data, []byte{'\n'}))
	}
	// The local checkpoint is the bucket's: a directory pulled whole is the export's, and an
	// export into it would go on from there. Its size is the file's.
	if err := log.Commit(*cp); err != nil {
		res.Err = err
		return res
	}
	if len(segs) > 0 {
		st.Last[key] = segs[len(segs)-1].Key
	}
	return res
}

// sameCheckpoint tells whether the local checkpoint is the bucket's. A checkpoint can move
// without the log growing (a pod replaced under the name, an instance found stored to its end),
// and the local one must follow it, with nothing to fetch. Sizes differ where a pull began later
// than the log (Since).
func sameCheckpoint(local, remote store.Checkpoint) bool {
	remote.Size = local.Size
	return local == remote
}

// firstByte is where a first pull starts: the last segment that began before Since's day (it may
// hold lines of that day), or the first if none did.
func (p *Puller) firstByte(r bucket.ContainerRef) (int64, error) {
	if p.Since.IsZero() {
		return 0, nil
	}
	segs, cp, err := p.Src.Segments(r.Namespace, r.Pod, r.Container)
	if err != nil {
		return 0, err
	}
	// A segment's key has the day of its first line: the one before the first of Since's day
	// may hold lines of that day too, and is pulled with them.
	day := p.Since.UTC().Format("2006-01-02")
	from := cp.Size
	for i, s := range segs {
		if d, start, ok := bucket.SegmentDay(s.Key); ok && d >= day {
			from = start
			if i > 0 {
				_, from, _ = bucket.SegmentDay(segs[i-1].Key)
			}
			break
		}
	}
	if len(segs) > 0 && from == cp.Size {
		_, from, _ = bucket.SegmentDay(segs[len(segs)-1].Key)
	}
	return from, nil
}

func (p *Puller) get(ctx context.Context, key string) ([]byte, error) {
	data, err := p.Bucket.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", key, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return out, nil
}

func (p *Puller) readState() (*state, error) {
	st := &state{Base: map[string]int64{}, Last: map[string]string{}}
	data, err := os.ReadFile(filepath.Join(p.Root, filepath.FromSlash(stateFile)))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("reading %s: %w", stateFile, err)
	}
	if st.Base == nil {
		st.Base = map[string]int64{}
	}
	if st.Last == nil {
		st.Last = map[string]string{}
	}
	return st, nil
}

// saveState replaces the state file (written aside, synced, renamed).
func (p *Puller) saveState(st *state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	name := filepath.Join(p.Root, filepath.FromSlash(stateFile))
	tmp := name + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
