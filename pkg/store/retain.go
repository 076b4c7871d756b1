package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"k8s.io/klog/v2"
)

// Retention says what Maintain does with the logs of pods that are gone.
type Retention struct {
	// Now is the run's clock: a pod first found gone is marked gone at Now.
	Now time.Time
	// Retain removes a container's files, checkpoint and gaps once its pod has been gone, and
	// its last line is older, for that long; 0 keeps them.
	Retain time.Duration
	// Compress stores the log of a pod that is gone as <container>.<n>.log.gz.
	Compress bool
}

// Maintained is what Maintain did, each list holding namespace/pod/container keys, sorted.
type Maintained struct {
	Gone       []string `json:"gone,omitempty"`
	Back       []string `json:"back,omitempty"`
	Compressed []string `json:"compressed,omitempty"`
	Removed    []string `json:"removed,omitempty"`
}

// archiveName is the n-th compressed log of a container in its pod's directory. Container names
// are DNS labels, without dots, so it is never another container's log.
func archiveName(container string, n int) string {
	return container + "." + strconv.Itoa(n) + logSuffix + ".gz"
}

// tmpArchiveName is where an archive is written before it is renamed into place; names from the
// cluster never begin with a dot.
func tmpArchiveName(container string, n int) string {
	return "." + archiveName(container, n) + ".new"
}

// archiveNumber returns n if name is an archive of container (or its temporary name).
func archiveNumber(name, container string) (int, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(strings.TrimPrefix(name, "."), ".new"), container+".")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, logSuffix+".gz")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	return n, err == nil && n > 0 && strconv.Itoa(n) == num
}

// Namespaces returns the namespaces the directory keeps checkpoints or gaps of, sorted.
func (d *Dir) Namespaces() ([]string, error) {
	var out []string
	for _, dir := range []string{checkpointsDir, gapsDir} {
		es, err := fs.ReadDir(d.fs.FS(), dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, hostPathError("read", d.Path(dir), err)
		}
		for _, e := range es {
			if ns, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok && plainName(ns) && !slices.Contains(out, ns) {
				out = append(out, ns)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// Maintain applies retention and compression to the containers of a namespace, which the caller
// has just listed completely: present tells whether a pod of that name is there. A pod not there
// is known to be gone (a pod merely not selected is still there), so it is only ever asked after
// a listing of every pod of the namespace, and after the run's exports are done: nothing writes
// to a log it changes.
//
// A container whose pod is gone is marked with the time it was first found gone (a checkpoint
// line, Checkpoint.Gone); its log is then compressed, and once the pod has been gone and its last
// line is older than r.Retain, its files, checkpoint and gaps are removed. A pod back under its
// name loses the mark (here, or when its log is opened). Every step is crash-safe: see compress
// and remove.
func (d *Dir) Maintain(namespace string, present func(pod string) bool, r Retention) (*Maintained, error) {
	if err := checkName(namespace); err != nil {
		return nil, err
	}
	cps, err := d.checkpoints(namespace)
	if err != nil {
		return nil, err
	}
	cps.acquire()
	defer func() { _ = cps.release() }()
	cps.mu.Lock()
	if cps.err != nil {
		cps.mu.Unlock()
		return nil, cps.err
	}
	all := make(map[containerKey]Checkpoint, len(cps.cps))
	cps.cps.all(func(k containerKey, p packed) { all[k] = p.unpack() })
	cps.mu.Unlock()
	keys := make([]containerKey, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)

	m := &Maintained{}
	name := func(k containerKey) string { return namespace + "/" + k.pod + "/" + k.container }
	// First the marks, in one synced write: what is gone from now, what is back.
	marks := map[containerKey]Checkpoint{}
	for _, k := range keys {
		cp := all[k]
		switch gone := !present(k.pod); {
		case gone && cp.Gone.IsZero():
			cp.Gone = r.Now
			m.Gone = append(m.Gone, name(k))
		case !gone && !cp.Gone.IsZero():
			cp.Gone = time.Time{}
			m.Back = append(m.Back, name(k))
		default:
			continue
		}
		marks[k], all[k] = cp, cp
	}
	if err := cps.put(marks); err != nil {
		return m, err
	}
	var errs []error
	if r.Compress {
		// The archive numbers of the logs to compress, saved together: one synced write.
		numbered := map[containerKey]Checkpoint{}
		for _, k := range keys {
			cp := all[k]
			if cp.Gone.IsZero() || cp.Archive > 0 || cp.Size == 0 || (r.Retain > 0 && due(cp, r)) {
				continue
			}
			n, err := d.nextArchive(namespace, k)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			cp.Archive = n
			numbered[k], all[k] = cp, cp
		}
		if err := cps.put(numbered); err != nil {
			return m, errors.Join(append(errs, err)...)
		}
	}
	var removed []containerKey
	for _, k := range keys {
		cp := all[k]
		if cp.Gone.IsZero() {
			continue
		}
		if r.Retain > 0 && due(cp, r) {
			if err := d.removeFiles(namespace, k); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, k)
			continue
		}
		if r.Compress && cp.Archive > 0 {
			done, err := d.compress(namespace, k, cp)
			if err != nil {
				errs = append(errs, err)
			} else if done {
				m.Compressed = append(m.Compressed, name(k))
			}
		}
	}
	// The gaps go after the files they describe, and the checkpoints last: a crash in between
	// leaves the checkpoint of a removed log (its gone mark expired), from which the next run
	// finishes the removal. Had the checkpoint gone first, the gaps left behind would pass to
	// the next pod of the name.
	var gapsGone []containerKey
	for _, k := range removed {
		if err := d.RemoveGaps(namespace, k.pod, k.container); err != nil {
			errs = append(errs, err)
			continue
		}
		gapsGone = append(gapsGone, k)
	}
	if len(gapsGone) > 0 {
		if err := cps.remove(gapsGone); err != nil {
			return m, errors.Join(append(errs, err)...)
		}
	}
	for _, k := range gapsGone {
		m.Removed = append(m.Removed, name(k))
	}
	// The gaps of containers that never had a log (their pod went before any of it was read)
	// go once the pod has been gone, and the gaps were found, that long ago.
	if r.Retain > 0 {
		if err := d.expireGaps(namespace, present, all, r, m); err != nil {
			errs = append(errs, err)
		}
	}
	return m, errors.Join(errs...)
}

func expired(t time.Time, r Retention) bool { return !t.After(r.Now.Add(-r.Retain)) }

// due tells whether a gone container's files are to be removed.
func due(cp Checkpoint, r Retention) bool {
	return expired(cp.Gone, r) && (cp.Last.IsZero() || expired(cp.Last, r))
}

// nextArchive returns the number of a container's next archive: one more than any there.
func (d *Dir) nextArchive(namespace string, k containerKey) (int, error) {
	names, err := d.containerFiles(path.Join(namespace, k.pod), k.container)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if a, ok := archiveNumber(name, k.container); ok && a > n {
			n = a
		}
	}
	return n + 1, nil
}

func compareKeys(a, b containerKey) int {
	return cmp.Or(cmp.Compare(a.pod, b.pod), cmp.Compare(a.container, b.container))
}

// expireGaps removes the gap records of containers without a checkpoint whose pod is gone and
// whose gaps were all found more than r.Retain ago.
func (d *Dir) expireGaps(namespace string, present func(string) bool, cps map[containerKey]Checkpoint, r Retention, m *Maintained) error {
	data, err := d.fs.ReadFile(gapsPath(namespace))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return hostPathError("read", d.Path(gapsPath(namespace)), err)
	}
	gaps, _ := parseGaps(data)
	keys := make([]containerKey, 0, len(gaps))
	for k, gs := range gaps {
		if _, ok := cps[k]; ok || present(k.pod) {
			continue
		}
		if !slices.ContainsFunc(gs, func(g Gap) bool { return g.Found.IsZero() || !expired(g.Found, r) }) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	var errs []error
	for _, k := range keys {
		if err := d.RemoveGaps(namespace, k.pod, k.container); err != nil {
			errs = append(errs, err)
			continue
		}
		m.Removed = append(m.Removed, namespace+"/"+k.pod+"/"+k.container)
	}
	return errors.Join(errs...)
}

// containerFiles returns the names, in the pod's directory, of a container's files: its log, the
// log's temporary name, its archives and their temporary names.
func (d *Dir) containerFiles(podDir, container string) ([]string, error) {
	es, err := fs.ReadDir(d.fs.FS(), podDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, hostPathError("read", d.Path(podDir), err)
	}
	var names []string
	for _, e := range es {
		n := e.Name()
		if _, ok := archiveNumber(n, container); ok || n == container+logSuffix || n == "."+container+logSuffix+".new" {
			names = append(names, n)
		}
	}
	return names, nil
}

// removeFiles removes a container's files and makes the removals durable, before its checkpoint
// goes: a crash leaves the checkpoint of a log that is gone, which a later run removes (or, for a
// pod back under the name, exports again from the start), never a log without its checkpoint.
func (d *Dir) removeFiles(namespace string, k containerKey) error {
	podDir := path.Join(namespace, k.pod)
	names, err := d.containerFiles(podDir, k.container)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := d.fs.Remove(path.Join(podDir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return hostPathError("remove", d.Path(path.Join(podDir, n)), err)
		}
	}
	if len(names) == 0 {
		return nil
	}
	if err := d.syncDir(podDir); err != nil {
		return err
	}
	// The pod's directory goes with its last file; it is made again if the pod comes back.
	if es, err := fs.ReadDir(d.fs.FS(), podDir); err == nil && len(es) == 0 {
		if err := d.fs.Remove(podDir); err == nil {
			d.forgetDir(podDir)
			return d.syncDir(namespace)
		}
	}
	return nil
}

// forgetDir closes a directory held open that was removed.
func (d *Dir) forgetDir(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.dirs[p]; ok {
		h.stale = true
		delete(d.dirs, p)
		if h.refs == 0 {
			d.idle--
			_ = h.fs.Close()
		}
	}
	delete(d.fresh, p)
	delete(d.dirty, p)
}

// archiveMeta is kept in the gzip header's comment of an archive (which zcat ignores), so that
// an archive says what it holds once no checkpoint describes it.
type archiveMeta struct {
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Container string    `json:"container"`
	PodUID    string    `json:"podUID,omitempty"`
	Lines     int64     `json:"lines"`
	Bytes     int64     `json:"bytes"`
	First     time.Time `json:"first,omitzero"`
	Last      time.Time `json:"last,omitzero"`
	Gone      time.Time `json:"gone"`
}

// compress stores the log of a container whose pod is gone as <container>.<n>.log.gz, n being
// cp.Archive, and reports whether it did so now. The number is saved in the checkpoint first (by
// Maintain, for all the logs it compresses in one synced write); the archive is written under a
// temporary name, synced and renamed, and the rename synced; only then is the log removed (that
// removal is synced with the next round of commits or at Close). So a crash leaves either the log alone (the next run writes the same
// archive again), or the archive and maybe the log, which the next run removes (or, if the pod
// came back, the export of its log does): never both kept, never neither.
func (d *Dir) compress(namespace string, k containerKey, cp Checkpoint) (bool, error) {
	podDir := path.Join(namespace, k.pod)
	logRel := path.Join(podDir, k.container+logSuffix)
	gzRel := path.Join(podDir, archiveName(k.container, cp.Archive))
	if _, err := d.fs.Lstat(gzRel); err == nil {
		// Written before a crash: only the log's removal is left.
		return false, d.removeLog(podDir, logRel)
	}
	src := logRel
	fi, err := d.fs.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		// A crash between the first checkpoint and the rename left the log under its
		// temporary name (OpenLog would rename it).
		src = tmpName(logRel)
		fi, err = d.fs.Lstat(src)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("%s has a checkpoint (%d bytes) but no file: not compressed", d.Path(logRel), cp.Size)
	case err != nil:
		return false, hostPathError("stat", d.Path(logRel), err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("%s is not a regular file", d.Path(logRel))
	case fi.Size() < cp.Size:
		return false, fmt.Errorf("%s is shorter (%d bytes) than its checkpoint (%d bytes): not compressed", d.Path(logRel), fi.Size(), cp.Size)
	}
	meta := archiveMeta{Namespace: namespace, Pod: k.pod, Container: k.container, PodUID: cp.PodUID, Lines: cp.Lines, Bytes: cp.Size, First: cp.Begin, Last: cp.Last, Gone: cp.Gone}
	if err := d.writeArchive(src, cp.Size, path.Join(podDir, tmpArchiveName(k.container, cp.Archive)), gzRel, meta); err != nil {
		return false, err
	}
	if err := d.removeLog(podDir, logRel); err != nil {
		return false, err
	}
	klog.V(1).InfoS("compressed a finished log", "file", d.Path(gzRel), "bytes", cp.Size)
	return true, nil
}

// writeArchive compresses the first size bytes of src into tmp, syncs it, renames it to dst and
// syncs the rename.
func (d *Dir) writeArchive(src string, size int64, tmp, dst string, meta archiveMeta) (err error) {
	in, err := d.fs.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		return hostPathError("open", d.Path(src), err)
	}
	defer in.Close()
	var out file
	for range 2 {
		// O_EXCL: what a crashed run left under the temporary name is removed, not appended to.
		if out, err = d.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, d.opts.fileMode); !errors.Is(err, fs.ErrExist) {
			break
		}
		if err = d.fs.Remove(tmp); err != nil {
			break
		}
	}
	if err != nil {
		return hostPathError("create", d.Path(tmp), err)
	}
	defer func() {
		if out != nil {
			_ = out.Close()
		}
		if err != nil {
			_ = d.fs.Remove(tmp)
		}
	}()
	comment, _ := json.Marshal(meta) // plain fields: cannot fail
	w := &offsetWriter{f: out}
	zw, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression) // a valid level: cannot fail
	zw.Name = path.Base(strings.TrimSuffix(dst, ".gz"))
	zw.Comment = string(comment)
	zw.ModTime = meta.Last
	if _, err = io.Copy(zw, io.NewSectionReader(in, 0, size)); err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Sync()
	}
	if err == nil {
		err = out.Close()
		out = nil
	}
	if err != nil {
		return fmt.Errorf("compressing %s: %w", d.Path(src), err)
	}
	if err = d.fs.Rename(tmp, dst); err != nil {
		return hostPathError("rename", d.Path(tmp), err)
	}
	return d.syncDir(path.Dir(dst))
}

// removeLog removes a log that is stored compressed, and its temporary name. The removal need
// not be durable at once: a crash that keeps the log leaves it beside its archive, and the next
// run removes it again.
func (d *Dir) removeLog(podDir, logRel string) error {
	removed := false
	for _, n := range []string{logRel, tmpName(logRel)} {
		err := d.fs.Remove(n)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return hostPathError("remove", d.Path(n), err)
		}
		removed = removed || err == nil
	}
	if removed {
		d.markDirty(podDir)
	}
	return nil
}

// offsetWriter writes a file from its start through WriteAt, the one way the store writes.
type offsetWriter struct {
	f   file
	off int64
}

func (w *offsetWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
}

// reopenArchived drops the marks of a pod that was gone from the checkpoint of its log, opened
// because a pod is there again under the name. If the log is stored compressed, the pod starts a
// file of its own beside the archive (and the log, which a crash may have left after writing the
// archive, is removed); if the compression never finished, the log goes on.
func (l *Log) reopenArchived() error {
	cp := *l.cp
	n := cp.Archive
	cp.Gone, cp.Archive = time.Time{}, 0
	l.cp = &cp
	if n == 0 {
		return nil
	}
	in := l.in.fs
	dir := path.Dir(l.rel)
	_, err := in.Lstat(archiveName(l.key.container, n))
	switch {
	case err == nil:
		for _, name := range []string{l.base, path.Base(tmpName(l.rel))} {
			if err := in.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing %s, stored compressed: %w", l.dir.Path(path.Join(dir, name)), err)
			}
		}
		// The removal need not be durable before the new log's first checkpoint: until then the
		// checkpoint still names the archive, and the new log takes the name by a rename.
		l.dir.markDirty(dir)
		l.Archived, l.cp = &cp, nil
	case errors.Is(err, fs.ErrNotExist):
		if err := in.Remove(tmpArchiveName(l.key.container, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", l.dir.Path(path.Join(dir, tmpArchiveName(l.key.container, n))), err)
		}
	default:
		return fmt.Errorf("checking %s: %w", l.dir.Path(path.Join(dir, archiveName(l.key.container, n))), err)
	}
	return nil
}

// put appends checkpoints of containers whose logs are not open (the marks of Maintain) in one
// write, and syncs it.
func (c *checkpoints) put(cps map[containerKey]Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	keys := make([]containerKey, 0, len(cps))
	for k := range cps {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	var b []byte
	for _, k := range keys {
		var err error
		if b, err = appendRecord(b, k, cps[k]); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if err := c.file.write(b, len(keys)); err != nil {
		return err
	}
	for _, k := range keys {
		c.cps.put(k, cps[k])
	}
	if err := c.file.sync(); err != nil {
		c.err = fmt.Errorf("checkpoint file %s could not be saved, nothing more is saved to it in this run: %w", c.file.shown, err)
		return c.err
	}
	return nil
}

// remove drops the checkpoints of removed logs, rewriting the file atomically.
func (c *checkpoints) remove(keys []containerKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	old := make(map[containerKey]Checkpoint, len(keys))
	for _, k := range keys {
		if p, ok := c.cps.get(k); ok {
			old[k] = p.unpack()
		}
		c.cps.delete(k)
	}
	if err := c.compact(); err != nil {
		for k, cp := range old {
			c.cps.put(k, cp)
		}
		return err
	}
	return nil
}
