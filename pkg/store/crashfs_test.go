package store

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// This file records what a run does to its directory and rebuilds the states a crash could leave,
// the way ALICE and CrashMonkey test file systems: at any point of the recorded operations, each
// file keeps any prefix of its writes since it was last synced (the last one kept maybe torn, or
// NULs where the size reached the disk and the data did not, as XFS shows), and each directory
// any subset of its entries changed since it was last synced.

type opKind int

const (
	opCreate opKind = iota
	opWrite
	opTrunc
	opSync
	opMkdir
	opRename
	opRemove
	opSyncDir
	opSyncFS
)

var opNames = [...]string{"create", "write", "truncate", "sync", "mkdir", "rename", "remove", "syncdir", "syncfs"}

type fsOp struct {
	kind        opKind
	name, name2 string // slash paths in the directory
	ino         int
	off         int64
	data        []byte
}

func (o fsOp) String() string {
	switch o.kind {
	case opWrite:
		return fmt.Sprintf("write #%d @%d %q", o.ino, o.off, o.data)
	case opTrunc:
		return fmt.Sprintf("truncate #%d to %d", o.ino, o.off)
	case opSync:
		return fmt.Sprintf("sync #%d", o.ino)
	case opRename:
		return fmt.Sprintf("rename %s to %s", o.name, o.name2)
	case opCreate:
		return fmt.Sprintf("create %s #%d", o.name, o.ino)
	}
	return opNames[o.kind] + " " + o.name
}

// Recorder records the operations of runs on one directory, from a snapshot of it taken when
// the recorder is made, which counts as durable.
type Recorder struct {
	mu      sync.Mutex
	ops     []fsOp
	live    map[string]int // path to inode (files) or -1 (directories), as the run sees them
	next    int
	initial map[int][]byte // inode contents of the snapshot
	// initialDirs holds the snapshot's entries of each directory.
	initialDirs map[string]map[string]ent
}

type ent struct {
	dir bool
	ino int
}

// NewRecorder snapshots dir.
func NewRecorder(dir string) (*Recorder, error) {
	r := &Recorder{live: map[string]int{".": -1}, initial: map[int][]byte{}, initialDirs: map[string]map[string]ent{".": {}}}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		parent := r.initialDirs[path.Dir(rel)]
		if e.IsDir() {
			r.live[rel] = -1
			r.initialDirs[rel] = map[string]ent{}
			parent[path.Base(rel)] = ent{dir: true}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r.next++
		r.live[rel], r.initial[r.next] = r.next, data
		parent[path.Base(rel)] = ent{ino: r.next}
		return nil
	})
	return r, err
}

// Ops returns how many operations were recorded.
func (r *Recorder) Ops() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// SyncFSOps returns how many of the recorded operations were a syncfs.
func (r *Recorder) SyncFSOps() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.ops {
		if o.kind == opSyncFS {
			n++
		}
	}
	return n
}

// Option makes Open record through r.
func (r *Recorder) Option() Option {
	return func(o *options) {
		inner := o.fs
		o.fs = func(root *os.Root) fsys { return &recFS{fsys: inner(root), r: r, dir: "."} }
	}
}

func (r *Recorder) add(o fsOp) { r.ops = append(r.ops, o) }

type recFS struct {
	fsys
	r *Recorder
	// dir is the directory this fsys was opened on (OpenDir), "." for the top: operations are
	// recorded with the paths they have in the top directory.
	dir string
}

// full is the path of name in the top directory.
func (f *recFS) full(name string) string { return path.Join(f.dir, name) }

func (f *recFS) OpenDir(name string) (fsys, error) {
	inner, err := f.fsys.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return &recFS{fsys: inner, r: f.r, dir: f.full(name)}, nil
}

func (f *recFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	inner, err := f.fsys.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	name = f.full(name)
	ino, existed := f.r.live[name]
	switch {
	case !existed && flag&os.O_CREATE != 0:
		f.r.next++
		ino = f.r.next
		f.r.live[name] = ino
		f.r.add(fsOp{kind: opCreate, name: name, ino: ino})
	case !existed:
		panic("recorder: " + name + " opened but not known")
	case flag&os.O_TRUNC != 0:
		f.r.add(fsOp{kind: opTrunc, ino: ino})
	}
	return &recFile{file: inner, r: f.r, ino: ino}, nil
}

func (f *recFS) Mkdir(name string, perm fs.FileMode) error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if err := f.fsys.Mkdir(name, perm); err != nil {
		return err
	}
	name = f.full(name)
	f.r.live[name] = -1
	f.r.add(fsOp{kind: opMkdir, name: name})
	return nil
}

func (f *recFS) Rename(oldname, newname string) error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if path.Dir(oldname) != path.Dir(newname) {
		panic("recorder: rename across directories")
	}
	if err := f.fsys.Rename(oldname, newname); err != nil {
		return err
	}
	oldname, newname = f.full(oldname), f.full(newname)
	ino := f.r.live[oldname]
	delete(f.r.live, oldname)
	f.r.live[newname] = ino
	f.r.add(fsOp{kind: opRename, name: oldname, name2: newname, ino: ino})
	return nil
}

func (f *recFS) remove(name string, all bool) error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	var err error
	if all {
		err = f.fsys.RemoveAll(name)
	} else {
		err = f.fsys.Remove(name)
	}
	if err != nil {
		return err
	}
	name = f.full(name)
	if _, ok := f.r.live[name]; !ok {
		return nil
	}
	for p := range f.r.live {
		if p == name || strings.HasPrefix(p, name+"/") {
			delete(f.r.live, p)
		}
	}
	f.r.add(fsOp{kind: opRemove, name: name})
	return nil
}

func (f *recFS) Remove(name string) error    { return f.remove(name, false) }
func (f *recFS) RemoveAll(name string) error { return f.remove(name, true) }

func (f *recFS) SyncDir(name string) error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if err := f.fsys.SyncDir(name); err != nil {
		return err
	}
	f.r.add(fsOp{kind: opSyncDir, name: f.full(name)})
	return nil
}

// SyncFS is recorded as making every file's and directory's changes durable.
func (f *recFS) SyncFS() error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if err := f.fsys.SyncFS(); err != nil {
		return err
	}
	f.r.add(fsOp{kind: opSyncFS})
	return nil
}

// SyncFSMin makes Open replace the syncs of a round of commits by one syncfs from n syncs on,
// rather than from the default, so that a test's small rounds take that path.
func SyncFSMin(n int) Option {
	return func(o *options) { o.syncFSMin = n }
}

// WriteFileAtomic is recorded as what renameio does: create a temporary file beside name, write,
// sync, rename.
func (f *recFS) WriteFileAtomic(name string, data []byte, perm fs.FileMode) error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if err := f.fsys.WriteFileAtomic(name, data, perm); err != nil {
		return err
	}
	name = f.full(name)
	f.r.next++
	ino := f.r.next
	tmp := path.Join(path.Dir(name), "."+path.Base(name)+".renameio")
	f.r.add(fsOp{kind: opCreate, name: tmp, ino: ino})
	f.r.add(fsOp{kind: opWrite, ino: ino, data: slices.Clone(data)})
	f.r.add(fsOp{kind: opSync, ino: ino})
	f.r.add(fsOp{kind: opRename, name: tmp, name2: name, ino: ino})
	f.r.live[name] = ino
	return nil
}

type recFile struct {
	file
	r   *Recorder
	ino int
}

func (f *recFile) WriteAt(p []byte, off int64) (int, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	n, err := f.file.WriteAt(p, off)
	if n > 0 {
		f.r.add(fsOp{kind: opWrite, ino: f.ino, off: off, data: slices.Clone(p[:n])})
	}
	return n, err
}

func (f *recFile) Truncate(size int64) error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if err := f.file.Truncate(size); err != nil {
		return err
	}
	f.r.add(fsOp{kind: opTrunc, ino: f.ino, off: size})
	return nil
}

func (f *recFile) Sync() error {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if err := f.file.Sync(); err != nil {
		return err
	}
	f.r.add(fsOp{kind: opSync, ino: f.ino})
	return nil
}

// CrashState is one state a crash could leave.
type CrashState struct {
	// After is how many of the recorded operations ran.
	After int
	// Last is the last of them, for messages.
	Last string
	// Choice says what was kept of the unsynced changes, for messages.
	Choice string
	dirs   map[string]map[string]ent
	files  map[int][]byte
}

// entOp is a change to a directory's entries: a name removed, added, or both at once (a rename).
type entOp struct {
	del, add string
	e        ent
}

type fileModel struct {
	durable []byte
	pending []fsOp
}

type dirModel struct {
	durable map[string]ent
	pending []entOp
}

// CrashStates returns the states a crash could leave after each prefix of the operations: all
// of them where they are at most max, else max picked at random (by rng) besides the two
// extremes, everything unsynced lost and everything kept.
func (r *Recorder) CrashStates(max int, rng *rand.Rand, yield func(CrashState) bool) {
	r.mu.Lock()
	ops := slices.Clone(r.ops)
	r.mu.Unlock()
	files := map[int]*fileModel{}
	for ino, data := range r.initial {
		files[ino] = &fileModel{durable: data}
	}
	dirs := map[string]*dirModel{}
	for d, es := range r.initialDirs {
		dirs[d] = &dirModel{durable: maps(es)}
	}
	for k := 0; k <= len(ops); k++ {
		if k > 0 {
			apply(ops[k-1], files, dirs)
		}
		last := "(none)"
		if k > 0 {
			last = ops[k-1].String()
		}
		if !enumerate(k, last, files, dirs, max, rng, yield) {
			return
		}
	}
}

func maps(m map[string]ent) map[string]ent {
	c := make(map[string]ent, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func apply(o fsOp, files map[int]*fileModel, dirs map[string]*dirModel) {
	parent := func(name string) *dirModel {
		d := dirs[path.Dir(name)]
		if d == nil {
			panic("recorder: no directory " + path.Dir(name))
		}
		return d
	}
	switch o.kind {
	case opCreate:
		files[o.ino] = &fileModel{}
		p := parent(o.name)
		p.pending = append(p.pending, entOp{add: path.Base(o.name), e: ent{ino: o.ino}})
	case opWrite, opTrunc:
		files[o.ino].pending = append(files[o.ino].pending, o)
	case opSync:
		f := files[o.ino]
		f.durable = contents(f.durable, f.pending)
		f.pending = nil
	case opMkdir:
		dirs[o.name] = &dirModel{durable: map[string]ent{}}
		p := parent(o.name)
		p.pending = append(p.pending, entOp{add: path.Base(o.name), e: ent{dir: true}})
	case opRename:
		p := parent(o.name)
		p.pending = append(p.pending, entOp{del: path.Base(o.name), add: path.Base(o.name2), e: ent{ino: o.ino}})
	case opRemove:
		p := parent(o.name)
		p.pending = append(p.pending, entOp{del: path.Base(o.name)})
	case opSyncDir:
		d := dirs[o.name]
		d.durable = entries(d.durable, d.pending, nil)
		d.pending = nil
	case opSyncFS:
		for _, f := range files {
			f.durable = contents(f.durable, f.pending)
			f.pending = nil
		}
		for _, d := range dirs {
			d.durable = entries(d.durable, d.pending, nil)
			d.pending = nil
		}
	}
}

// contents applies writes and truncations to data.
func contents(data []byte, ops []fsOp) []byte {
	data = slices.Clone(data)
	for _, o := range ops {
		switch o.kind {
		case opWrite:
			if end := o.off + int64(len(o.data)); end > int64(len(data)) {
				data = append(data, make([]byte, end-int64(len(data)))...)
			}
			copy(data[o.off:], o.data)
		case opTrunc:
			if o.off <= int64(len(data)) {
				data = data[:o.off]
			} else {
				data = append(data, make([]byte, o.off-int64(len(data)))...)
			}
		}
	}
	return data
}

// entries applies the changes whose bit is set in keep (all of them if keep is nil).
func entries(durable map[string]ent, pending []entOp, keep []bool) map[string]ent {
	m := maps(durable)
	for i, o := range pending {
		if keep != nil && !keep[i] {
			continue
		}
		if o.del != "" {
			delete(m, o.del)
		}
		if o.add != "" {
			m[o.add] = o.e
		}
	}
	return m
}

// fileChoices are the contents a file can have after a crash: any prefix of its unsynced
// changes, the first change left out torn in half or as NULs (the size kept, the data not), or
// as NULs with the write after it kept (pages written back out of order).
func fileChoices(f *fileModel) [][]byte {
	var out [][]byte
	seen := map[string]bool{}
	addc := func(b []byte) {
		if !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, b)
		}
	}
	for j := 0; j <= len(f.pending); j++ {
		base := contents(f.durable, f.pending[:j])
		addc(base)
		if j == len(f.pending) || f.pending[j].kind != opWrite {
			continue
		}
		w := f.pending[j]
		half := w
		half.data = w.data[:len(w.data)/2]
		addc(contents(base, []fsOp{half}))
		nul := w
		nul.data = make([]byte, len(w.data))
		addc(contents(base, []fsOp{nul}))
		// a write across pages, the second written back and the first not
		hole := w
		hole.data = append(make([]byte, len(w.data)/2), w.data[len(w.data)/2:]...)
		addc(contents(base, []fsOp{hole}))
		if j+1 < len(f.pending) && f.pending[j+1].kind == opWrite {
			// written back out of order: the next write is kept, this one a hole of NULs
			addc(contents(base, []fsOp{nul, f.pending[j+1]}))
		}
	}
	return out
}

func enumerate(k int, last string, files map[int]*fileModel, dirs map[string]*dirModel, max int, rng *rand.Rand, yield func(CrashState) bool) bool {
	type dim struct {
		name   string
		n      int // choices
		file   int // inode, or 0 for a directory
		dir    string
		fileCh [][]byte
	}
	var dims []dim
	inos := make([]int, 0, len(files))
	for ino := range files {
		inos = append(inos, ino)
	}
	sort.Ints(inos)
	for _, ino := range inos {
		if f := files[ino]; len(f.pending) > 0 {
			ch := fileChoices(f)
			dims = append(dims, dim{name: fmt.Sprint("#", ino), n: len(ch), file: ino, fileCh: ch})
		}
	}
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		if p := len(dirs[d].pending); p > 0 {
			n := 1 << min(p, 20)
			dims = append(dims, dim{name: d, n: n, dir: d})
		}
	}
	total := 1
	for _, d := range dims {
		total = min(total*d.n, 1<<30)
	}
	build := func(choice []int) CrashState {
		st := CrashState{After: k, Last: last, dirs: map[string]map[string]ent{}, files: map[int][]byte{}}
		var desc []string
		for ino, f := range files {
			st.files[ino] = f.durable
		}
		for d, m := range dirs {
			st.dirs[d] = m.durable
		}
		for i, d := range dims {
			c := choice[i]
			if d.file != 0 {
				st.files[d.file] = d.fileCh[c]
				desc = append(desc, fmt.Sprintf("%s:%d/%d", d.name, c, d.n))
				continue
			}
			pending := dirs[d.dir].pending
			keep := make([]bool, len(pending))
			for j := range keep {
				keep[j] = c&(1<<j) != 0
			}
			st.dirs[d.dir] = entries(dirs[d.dir].durable, pending, keep)
			desc = append(desc, fmt.Sprintf("%s:%b", d.name, c))
		}
		st.Choice = strings.Join(desc, " ")
		return st
	}
	choice := make([]int, len(dims))
	if total <= max {
		for {
			if !yield(build(choice)) {
				return false
			}
			i := 0
			for ; i < len(dims); i++ {
				if choice[i]++; choice[i] < dims[i].n {
					break
				}
				choice[i] = 0
			}
			if i == len(dims) {
				return true
			}
		}
	}
	for i := range dims { // all kept
		choice[i] = dims[i].n - 1
		if dims[i].file != 0 {
			choice[i] = len(dims[i].fileCh) - 1
			// the last choice may be a torn one: find the whole prefix
			want := contents(files[dims[i].file].durable, files[dims[i].file].pending)
			for c, b := range dims[i].fileCh {
				if bytes.Equal(b, want) {
					choice[i] = c
				}
			}
		}
	}
	if !yield(build(choice)) {
		return false
	}
	clear(choice) // all lost
	if !yield(build(choice)) {
		return false
	}
	for range max - 2 {
		for i := range dims {
			choice[i] = rng.IntN(dims[i].n)
		}
		if !yield(build(choice)) {
			return false
		}
	}
	return true
}

// Materialize writes the state into dir, which must be empty.
func (s CrashState) Materialize(dir string) error {
	var walk func(rel string) error
	walk = func(rel string) error {
		for name, e := range s.dirs[rel] {
			p := path.Join(rel, name)
			host := filepath.Join(dir, filepath.FromSlash(p))
			if e.dir {
				if err := os.Mkdir(host, 0o700); err != nil {
					return err
				}
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			if err := os.WriteFile(host, s.files[e.ino], 0o600); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(".")
}

// String lists the state's files, for messages.
func (s CrashState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "crash after op %d (%s), kept %s\n", s.After, s.Last, s.Choice)
	var walk func(rel string)
	walk = func(rel string) {
		names := make([]string, 0, len(s.dirs[rel]))
		for n := range s.dirs[rel] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			e, p := s.dirs[rel][n], path.Join(rel, n)
			if e.dir {
				fmt.Fprintf(&b, "  %s/\n", p)
				walk(p)
			} else {
				fmt.Fprintf(&b, "  %s %q\n", p, s.files[e.ino])
			}
		}
	}
	walk(".")
	return b.String()
}

// Trace lists the recorded operations, for messages.
func (r *Recorder) Trace() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for i, o := range r.ops {
		fmt.Fprintf(&b, "%3d %s\n", i+1, o)
	}
	return b.String()
}

// SetCompactMin lowers the size from which checkpoint files are rewritten, so that a short test
// rewrites them; it returns the function that restores it.
func SetCompactMin(n int) func() {
	old := compactMin
	compactMin = n
	return func() { compactMin = old }
}
