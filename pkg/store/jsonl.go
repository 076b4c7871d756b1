package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// jsonl is a file of JSON lines that the store only appends to, held open while it is written: the
// checkpoint files, the gap files and the run journal. A whole file, replaced by write and rename
// for each change, would cost a create and a rename per save.
//
// A run killed in the middle of an append leaves a last line without its newline; it is dropped
// when the file is read, so an append is all or nothing, as a rename would make it. A crash can
// also leave the file at its new size without its new bytes (XFS shows them as NULs, written out
// of order even between lines): no line kubectl logexport writes holds a NUL byte, and no append
// is synced without the ones before it, so the first line with a NUL and all after it are dropped
// the same way, and cut off by the next append. The owner serializes the calls.
type jsonl struct {
	dir   *Dir
	name  string // slash path inside the directory
	shown string // host path, for messages

	f    file
	size int64 // bytes of complete lines; a torn line after them is cut off by the next append
	// tail is set while the file holds bytes after size (a torn line, crash debris).
	tail bool
	// created is set while the file's entry in its directory is not synced yet.
	created bool
	// lines in the file.
	lines int
	// dev is the device of the file's file system, once it is open, if known.
	dev   uint64
	devOK bool
}

// scanLines calls fn with each complete line of r (without its newline), in order, and returns
// the length of those lines and whether anything follows them: a torn line or crash debris. It
// stops at the first error of fn (the line it refused is the tail) or of r. fn must not keep line.
// The file is read a buffer at a time, never whole: a namespace of tens of thousands of
// containers has a checkpoint file of several MiB, read at the start of a run, when its memory
// peaks.
func scanLines(r io.Reader, fn func(n int, line []byte) error) (size int64, tail bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte // a line longer than the buffer, gathered
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		switch {
		case errors.Is(err, io.EOF):
			return size, len(line) > 0, nil // the rest was cut short by a crash
		case err != nil:
			return size, true, err
		}
		body := line[:len(line)-1]
		if bytes.IndexByte(body, 0) >= 0 {
			return size, true, nil // the rest was cut short by a crash
		}
		if err := fn(n, body); err != nil {
			return size, true, err
		}
		size += int64(len(line))
	}
}

// scanData is scanLines on a file read whole.
func scanData(data []byte, fn func(n int, line []byte) error) error {
	_, _, err := scanLines(bytes.NewReader(data), fn)
	return err
}

// readJSONL reads a file's complete lines through fn; a missing file has none. An error of fn
// (a line that does not parse) is returned as is, with the file kept for appending.
func readJSONL(d *Dir, name string, fn func(n int, line []byte) error) (*jsonl, error) {
	j := &jsonl{dir: d, name: name, shown: d.Path(name)}
	f, err := d.fs.OpenFile(name, os.O_RDONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return j, nil
	case err != nil:
		return nil, hostPathError("read", j.shown, err)
	}
	defer f.Close()
	var ferr error
	size, tail, err := scanLines(f, func(n int, line []byte) error {
		if err := fn(n, line); err != nil {
			ferr = err
			return err
		}
		j.lines++
		return nil
	})
	if err != nil && ferr == nil {
		return nil, hostPathError("read", j.shown, err)
	}
	j.size, j.tail = size, tail
	return j, ferr
}

// write appends b (complete lines) without syncing it.
func (j *jsonl) write(b []byte, lines int) error {
	if j.f == nil {
		f, err := j.dir.fs.OpenFile(j.name, os.O_RDWR|os.O_CREATE, j.dir.opts.fileMode)
		if err != nil {
			return hostPathError("write", j.shown, err)
		}
		j.f = f
		if fi, err := f.Stat(); err == nil {
			j.dev, j.devOK = j.dir.opts.dev(fi)
			if j.size == 0 && !j.tail && fi.Size() == 0 {
				j.created = true // maybe: the entry is synced once more than needed
			}
		}
	}
	if j.tail {
		// A line written after a torn one must not leave the torn one's end after it, where it
		// would read as a complete line.
		if err := j.f.Truncate(j.size); err != nil {
			return hostPathError("write", j.shown, err)
		}
		j.tail = false
	}
	if _, err := j.f.WriteAt(b, j.size); err != nil {
		if terr := j.f.Truncate(j.size); terr != nil {
			j.tail = true
		}
		return hostPathError("write", j.shown, err)
	}
	j.size += int64(len(b))
	j.lines += lines
	return nil
}

// sync makes what was written durable, and the file's entry if it was created.
func (j *jsonl) sync() error {
	if err := j.syncData(); err != nil {
		return err
	}
	return j.syncEntry()
}

// syncData makes what was written durable.
func (j *jsonl) syncData() error {
	if j.f == nil {
		return nil
	}
	if err := j.f.Sync(); err != nil {
		return hostPathError("sync", j.shown, err)
	}
	return nil
}

// syncEntry makes the file's entry durable if it was created (after a syncfs, which covers it).
func (j *jsonl) syncEntry() error {
	if !j.created {
		return nil
	}
	if err := j.dir.syncDir(path.Dir(j.name)); err != nil {
		return err
	}
	j.created = false
	return nil
}

// append writes b and syncs it.
func (j *jsonl) append(b []byte, lines int) error {
	if err := j.write(b, lines); err != nil {
		return err
	}
	return j.sync()
}

// replace rewrites the file atomically with data (complete lines).
func (j *jsonl) replace(data []byte, lines int) error {
	if err := j.dir.replace(j.name, data); err != nil {
		return err
	}
	// The open file is the replaced one: the next append opens the new one.
	j.closeFile()
	j.size, j.lines, j.tail, j.created = int64(len(data)), lines, false, false
	return nil
}

// closeFile closes the file if it is open.
func (j *jsonl) closeFile() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// jsonLines marshals values as JSON lines.
func jsonLines[T any](vs []T) ([]byte, error) {
	var b []byte
	for _, v := range vs {
		line, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encoding a record: %w", err)
		}
		b = append(append(b, line...), '\n')
	}
	return b, nil
}
