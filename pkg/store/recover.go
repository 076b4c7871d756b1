package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/logline"
)

// maxRecoverWindow bounds how much of a file's tail is read to rebuild a checkpoint.
const maxRecoverWindow = 64 << 20

// recover rebuilds a checkpoint from the last lines of a --timestamps file, whose stored lines are
// the lines as served: the window is the trailing lines of the newest second.
func (d *Dir) recover(rel string, size int64) (*Checkpoint, error) {
	f, err := d.fs.OpenFile(rel, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := countLines(f)
	if err != nil {
		return nil, err
	}
	// Read back from the end until a line of an older second shows up.
	var tail []byte
	start, end := -1, size
	for start < 0 {
		if int64(len(tail)) >= maxRecoverWindow {
			return nil, errors.New("the last second of the file is too long to read back")
		}
		n := min(int64(logline.DefaultBufferSize), end)
		chunk := make([]byte, n)
		if _, err := f.ReadAt(chunk, end-n); err != nil {
			return nil, err
		}
		end -= n
		tail = append(chunk, tail...)
		if start, err = windowStart(tail, end == 0); err != nil {
			return nil, err
		}
	}
	complete := bytes.LastIndexByte(tail, '\n') + 1
	window := tail[start:complete]
	cp := &Checkpoint{Hash: NewHash().Add(window), Size: size - int64(len(tail)-complete), Lines: lines}
	for len(window) > 0 {
		i := bytes.IndexByte(window, '\n')
		ts, _, err := logline.ParseTimestamp(window[:i+1])
		if err != nil {
			return nil, err
		}
		if ts.After(cp.Last) {
			cp.Last = ts
		}
		cp.Skip++
		window = window[i+1:]
	}
	cp.Since = time.Unix(cp.Last.Unix(), 0).UTC()
	if cp.Skip == 0 {
		return nil, errors.New("no complete line")
	}
	return cp, nil
}

// windowStart returns where, in tail, the trailing lines of the newest second begin; -1 if tail
// may not reach back far enough (unless whole says it holds the file's start).
func windowStart(tail []byte, whole bool) (int, error) {
	complete := bytes.LastIndexByte(tail, '\n')
	if complete < 0 {
		if whole {
			return -1, errors.New("no complete line")
		}
		return -1, nil
	}
	var sec int64
	first := true
	end := complete
	for end >= 0 {
		begin := bytes.LastIndexByte(tail[:end], '\n') + 1
		if begin == 0 && !whole {
			return -1, nil // the line may start before tail
		}
		ts, _, err := logline.ParseTimestamp(tail[begin : end+1])
		if err != nil {
			return -1, fmt.Errorf("reading back the last lines: %w", err)
		}
		if first {
			sec, first = ts.Unix(), false
		} else if ts.Unix() < sec {
			return end + 1, nil
		}
		if begin == 0 {
			return 0, nil
		}
		end = begin - 1
	}
	return 0, nil
}

func countLines(f io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		c, err := f.Read(buf)
		n += int64(bytes.Count(buf[:c], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
