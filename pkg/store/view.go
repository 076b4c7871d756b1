package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/logexport/kubectl-logexport/pkg/logline"
)

// Inventory is what an export directory holds: its logs with their gaps, and its runs. It is read
// without the lock and without writing, so it can be read while a run (a follower) writes: a torn
// last line of a file is ignored as a run ignores it, and a file replaced meanwhile is read whole
// before or after.
type Inventory struct {
	Dir        string `json:"dir"`
	Timestamps bool   `json:"timestamps"`
	// Logs are sorted by namespace, pod and container.
	Logs []StoredLog `json:"logs"`
	// Runs are in the order they started, the newest last.
	Runs []RunRecord `json:"runs"`
	// Warnings are what could not be read (a corrupt line, a checkpoint without its log).
	Warnings []string `json:"warnings,omitempty"`
}

// StoredLog is one container's log as stored.
type StoredLog struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	// File is the host path of the log, "" when there is none (a container whose log was lost
	// before any of it was stored has only gaps).
	File string `json:"file,omitempty"`
	// Compressed is set for a log stored compressed (FILE.gz or FILE.zst).
	Compressed bool  `json:"compressed"`
	Lines      int64 `json:"lines"`
	// Bytes are the log's bytes as stored uncompressed.
	Bytes int64 `json:"bytes"`
	// First and Last are the timestamps of the first and last stored lines, nil if unknown.
	First *time.Time `json:"first,omitempty"`
	Last  *time.Time `json:"last,omitempty"`
	Gaps  []Gap      `json:"gaps,omitempty"`
	// archive numbers a row of an earlier pod's archive (see inspectArchives), 0 for the current.
	archive int
}

// Run states in an Inventory.
const (
	// RunEnded: the run appended its end.
	RunEnded = "ended"
	// RunUnfinished: the newest run, without an end yet: running, or killed (which shows once
	// the next run starts: the lock let no run start while it held the directory).
	RunUnfinished = "unfinished"
	// RunKilled: a run without an end that a later run followed.
	RunKilled = "killed"
)

// RunRecord is a run of the journal: its end line, or its start line if it has none.
type RunRecord struct {
	Run
	State string `json:"state"`
	// GapsRecorded counts the gaps kept in the gap files that the run found (and whose logs
	// are still there).
	GapsRecorded int `json:"gapsRecorded"`
}

// Failed tells whether the run ended with an error, or never ended.
func (r RunRecord) Failed() bool {
	return r.State == RunKilled || (r.ExitCode != nil && *r.ExitCode != 0)
}

// FoundGaps tells whether the run found a gap.
func (r RunRecord) FoundGaps() bool {
	return r.GapsRecorded > 0 || (r.Totals != nil && r.Totals.Gaps > 0)
}

// reader is how Inspect reads a directory: through the directory's os.Root here, and what a
// bucket would implement (objects by name, a listing by prefix, a ranged read).
type reader interface {
	ReadFile(name string) ([]byte, error)
	// List returns the names of the entries of a directory, nil if it does not exist.
	List(dir string) ([]string, error)
	// Exists tells whether a file is there.
	Exists(name string) (bool, error)
	// Head returns up to n bytes from the start of a file.
	Head(name string, n int) ([]byte, error)
	// Shown is the host path (or URL) of name, for messages.
	Shown(name string) string
}

type rootReader struct {
	root *os.Root
	path string
}

func (r rootReader) ReadFile(name string) ([]byte, error) { return r.root.ReadFile(name) }

func (r rootReader) List(dir string) ([]string, error) {
	es, err := fs.ReadDir(r.root.FS(), dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, err
}

func (r rootReader) Exists(name string) (bool, error) {
	fi, err := r.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil && fi.Mode().IsRegular(), err
}

func (r rootReader) Head(name string, n int) ([]byte, error) {
	f, err := r.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:k], err
}

func (r rootReader) Shown(name string) string {
	return filepath.Join(r.path, filepath.FromSlash(name))
}

// compressedSuffixes are the names a compressed log may have beside FILE.log.
var compressedSuffixes = []string{".gz", ".zst"}

// Inspect reads what the export directory dir holds, without locking or changing it.
func Inspect(dir string) (*Inventory, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	defer root.Close()
	return inspect(rootReader{root: root, path: dir})
}

func inspect(r reader) (*Inventory, error) {
	inv := &Inventory{Dir: r.Shown("."), Logs: []StoredLog{}, Runs: []RunRecord{}}
	data, err := r.ReadFile(metaFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a kubectl logexport directory (it has no %s)", inv.Dir, metaFile)
	}
	if err != nil {
		return nil, hostPathError("read", r.Shown(metaFile), err)
	}
	var meta Meta
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("reading %s: %w", r.Shown(metaFile), err)
	}
	if meta.Version != FormatVersion {
		return nil, fmt.Errorf("%s has format version %d, status reads version %d (a run converts it)", r.Shown(metaFile), meta.Version, FormatVersion)
	}
	inv.Timestamps = meta.Timestamps
	logs := map[string]*StoredLog{} // by namespace/pod/container
	get := func(ns string, k containerKey) *StoredLog {
		key := ns + "/" + k.pod + "/" + k.container
		if l, ok := logs[key]; ok {
			return l
		}
		l := &StoredLog{Namespace: ns, Pod: k.pod, Container: k.container}
		logs[key] = l
		return l
	}
	if err := inspectCheckpoints(r, inv, get); err != nil {
		return nil, err
	}
	gapsByRun := map[string]int{}
	if err := inspectGaps(r, inv, get, gapsByRun); err != nil {
		return nil, err
	}
	for _, l := range logs {
		inv.Logs = append(inv.Logs, *l)
	}
	inv.Logs = append(inv.Logs, inspectArchives(r, inv.Logs)...)
	// A container's archives of earlier pods of its name come before its current row.
	slices.SortFunc(inv.Logs, func(a, b StoredLog) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Container, b.Container),
			cmp.Compare(archiveOrder(a), archiveOrder(b)))
	})
	if err := inspectJournal(r, inv, gapsByRun); err != nil {
		return nil, err
	}
	return inv, nil
}

// eachNamespaceFile calls fn with each <namespace>.jsonl file of a directory, in the order of the
// namespaces.
func eachNamespaceFile(r reader, dir string, fn func(ns, name string, data []byte)) error {
	names, err := r.List(dir)
	if err != nil {
		return hostPathError("read", r.Shown(dir), err)
	}
	slices.Sort(names)
	for _, n := range names {
		ns, ok := strings.CutSuffix(n, ".jsonl")
		if !ok || !plainName(ns) {
			continue
		}
		name := path.Join(dir, n)
		data, err := r.ReadFile(name)
		if err != nil {
			return hostPathError("read", r.Shown(name), err)
		}
		fn(ns, name, data)
	}
	return nil
}

func inspectCheckpoints(r reader, inv *Inventory, get func(string, containerKey) *StoredLog) error {
	return eachNamespaceFile(r, checkpointsDir, func(ns, name string, data []byte) {
		cps := map[containerKey]Checkpoint{}
		err := scanData(data, func(n int, line []byte) error {
			rec, err := parseRecord(line)
			if err != nil {
				return fmt.Errorf("checkpoint file %s is corrupt at line %d (%v): the containers after it are not listed", r.Shown(name), n, err)
			}
			cps[containerKey{rec.Pod, rec.Container}] = rec.Checkpoint
			return nil
		})
		if err != nil {
			inv.Warnings = append(inv.Warnings, err.Error())
		}
		for k, cp := range cps {
			if err := describeLog(r, inv.Timestamps, get(ns, k), cp); err != nil {
				inv.Warnings = append(inv.Warnings, err.Error())
			}
		}
	})
}

// describeLog fills in what a checkpoint and the log's file say.
func describeLog(r reader, timestamps bool, l *StoredLog, cp Checkpoint) error {
	rel := path.Join(l.Namespace, l.Pod, l.Container+logSuffix)
	l.Lines, l.Bytes = cp.Lines, cp.Size
	if cp.Instance != "" && !cp.Last.IsZero() {
		l.Last = ptrTime(cp.Last)
	}
	if !cp.Begin.IsZero() {
		l.First = ptrTime(cp.Begin)
	}
	if cp.Archive > 0 {
		// The log of a pod that is gone, stored compressed (see Dir.Maintain). A plain log
		// beside it is what a crash left before its removal, which the next run finishes.
		gz := path.Join(l.Namespace, l.Pod, archiveName(l.Container, cp.Archive))
		if ok, _ := r.Exists(gz); ok {
			l.File, l.Compressed = r.Shown(gz), true
		}
	}
	if l.File == "" {
		ok, err := r.Exists(rel)
		if err != nil {
			return hostPathError("stat", r.Shown(rel), err)
		}
		if ok {
			l.File = r.Shown(rel)
		}
	}
	if l.File == "" && !cp.Gone.IsZero() {
		// Removed by retention, and the run stopped before the checkpoint went.
		return nil
	}
	if l.File == "" {
		for _, suffix := range compressedSuffixes {
			if ok, _ := r.Exists(rel + suffix); ok {
				l.File, l.Compressed = r.Shown(rel+suffix), true
				break
			}
		}
	}
	if l.File == "" {
		if cp.Size > 0 {
			return fmt.Errorf("%s has a checkpoint (%d bytes) but no file", r.Shown(rel), cp.Size)
		}
		return nil
	}
	if l.First == nil && timestamps && !l.Compressed && cp.Size > 0 {
		// Checkpoints written before Begin existed: the first line of a --timestamps file
		// carries it, one small read away. Without --timestamps it is not stored anywhere.
		head, err := r.Head(rel, int(min(cp.Size, int64(logline.DefaultBufferSize))))
		if err != nil {
			return hostPathError("read", r.Shown(rel), err)
		}
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			if ts, _, err := logline.ParseTimestamp(head[:i+1]); err == nil {
				l.First = ptrTime(ts)
			}
		}
	}
	return nil
}

func ptrTime(t time.Time) *time.Time { t = t.UTC(); return &t }

func inspectGaps(r reader, inv *Inventory, get func(string, containerKey) *StoredLog, byRun map[string]int) error {
	return eachNamespaceFile(r, gapsDir, func(ns, name string, data []byte) {
		gaps, bad := parseGaps(data)
		if bad > 0 {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("gap file %s has %d lines that do not parse", r.Shown(name), bad))
		}
		for k, gs := range gaps {
			l := get(ns, k)
			l.Gaps = append(l.Gaps, gs...)
			for _, g := range gs {
				byRun[g.Run]++
			}
		}
	})
}

func inspectJournal(r reader, inv *Inventory, gapsByRun map[string]int) error {
	data, err := r.ReadFile(journalFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return hostPathError("read", r.Shown(journalFile), err)
	}
	byID := map[string]int{}
	bad := 0
	_ = scanData(data, func(_ int, line []byte) error {
		var run Run
		if err := json.Unmarshal(line, &run); err != nil || run.ID == "" {
			bad++
			return nil
		}
		i, ok := byID[run.ID]
		if !ok {
			i = len(inv.Runs)
			byID[run.ID] = i
			inv.Runs = append(inv.Runs, RunRecord{State: RunUnfinished})
		}
		if run.Event == RunEnd || inv.Runs[i].ID == "" {
			inv.Runs[i].Run = run
		}
		if run.Event == RunEnd {
			inv.Runs[i].State = RunEnded
		}
		return nil
	})
	if bad > 0 {
		inv.Warnings = append(inv.Warnings, fmt.Sprintf("run journal %s has %d lines that do not parse", r.Shown(journalFile), bad))
	}
	MarkKilled(inv.Runs)
	for i := range inv.Runs {
		inv.Runs[i].GapsRecorded = gapsByRun[inv.Runs[i].ID]
	}
	return nil
}

// Problem says what a cron job or a probe should act on, "" if nothing: the newest run that is
// over (ended, or killed) failed or found a gap, or the newest run, still going or killed
// without a run after it, found a gap.
func (inv *Inventory) Problem() string {
	for i := len(inv.Runs) - 1; i >= 0; i-- {
		r := inv.Runs[i]
		switch {
		case r.State == RunUnfinished && r.FoundGaps():
			return fmt.Sprintf("run %s (not ended: running, or killed) found %d gaps", r.ID, r.GapsRecorded)
		case r.State == RunUnfinished:
			continue
		case r.State == RunKilled:
			return fmt.Sprintf("the last run, %s, was killed before it ended", r.ID)
		case r.Failed():
			return fmt.Sprintf("the last run, %s, failed: %s", r.ID, r.Error)
		case r.FoundGaps():
			n := r.GapsRecorded
			if r.Totals != nil {
				n = max(n, r.Totals.Gaps)
			}
			return fmt.Sprintf("the last run, %s, found %d gaps", r.ID, n)
		}
		return ""
	}
	return ""
}

// inspectArchives returns a row for each archive of an earlier pod of a container's name (a pod
// back after its predecessor's log was compressed): no checkpoint describes it any more, its gzip
// header does. The archive a checkpoint names is the container's own row already.
func inspectArchives(r reader, logs []StoredLog) []StoredLog {
	current := map[string]bool{} // by archive path: described already
	pods := map[string][]StoredLog{}
	for _, l := range logs {
		if l.Compressed {
			current[l.File] = true
		}
		dir := path.Join(l.Namespace, l.Pod)
		pods[dir] = append(pods[dir], l)
	}
	var out []StoredLog
	for dir, ls := range pods {
		names, err := r.List(dir)
		if err != nil {
			continue
		}
		for _, name := range names {
			for _, l := range ls {
				n, ok := archiveNumber(name, l.Container)
				rel := path.Join(dir, name)
				if !ok || strings.HasPrefix(name, ".") || current[r.Shown(rel)] {
					continue
				}
				a := StoredLog{Namespace: l.Namespace, Pod: l.Pod, Container: l.Container, File: r.Shown(rel), Compressed: true, archive: n}
				if head, err := r.Head(rel, 4096); err == nil {
					if zr, err := gzip.NewReader(bytes.NewReader(head)); err == nil {
						var m archiveMeta
						if json.Unmarshal([]byte(zr.Comment), &m) == nil {
							a.Lines, a.Bytes = m.Lines, m.Bytes
							if !m.First.IsZero() {
								a.First = ptrTime(m.First)
							}
							if !m.Last.IsZero() {
								a.Last = ptrTime(m.Last)
							}
						}
					}
				}
				out = append(out, a)
			}
		}
	}
	return out
}

func archiveOrder(l StoredLog) int {
	if l.archive == 0 {
		return math.MaxInt
	}
	return l.archive
}
