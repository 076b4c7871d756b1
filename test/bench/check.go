package main

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/maphash"
	"io"
	"os"
)

// tally counts lines by their text, to compare what a contender stored or printed with what the
// API served: a line served n times must be there n times. Lines are kept as 64-bit hashes, so
// that millions of them fit (a collision among them is unlikely enough to ignore).
type tally struct {
	counts map[uint64]int64
	seed   maphash.Seed
}

func newTally() *tally { return &tally{counts: map[uint64]int64{}, seed: maphash.MakeSeed()} }

// served counts, for each container, what the API serves of its log: the first size bytes of the
// CRI file (size < 0: all of it), each entry's text without its timestamp, as kubectl logs prints it.
func (t *tally) served(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if size >= 0 {
		r = io.LimitReader(f, size)
	}
	return eachLine(r, func(line []byte) error {
		// "<timestamp> stdout F <text>"; the generated logs have no partial entries.
		fields := bytes.SplitN(line, []byte{' '}, 4)
		if len(fields) != 4 || string(fields[2]) != "F" {
			return fmt.Errorf("%s: not a full CRI entry: %q", path, line)
		}
		t.counts[maphash.Bytes(t.seed, fields[3])]++
		return nil
	})
}

// stored takes away what a contender stored or printed, a line at a time; stamped says each
// line begins with its timestamp and a space, which is not compared.
func (t *tally) stored(path string, stamped bool) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil // nothing stored: every line of it is lost
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return eachLine(f, func(line []byte) error {
		if stamped {
			_, rest, ok := bytes.Cut(line, []byte{' '})
			if !ok {
				return fmt.Errorf("%s: no timestamp: %q", path, line)
			}
			line = rest
		}
		t.counts[maphash.Bytes(t.seed, line)]--
		return nil
	})
}

// diff says how many served lines are missing (lost) and how many are there once too often
// (doubled).
func (t *tally) diff() (lost, doubled int64) {
	for _, n := range t.counts {
		if n > 0 {
			lost += n
		} else {
			doubled -= n
		}
	}
	return lost, doubled
}

// eachLine calls fn with each line of r without its newline; a last line without one counts too.
func eachLine(r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// Longer than the buffer: no generated line is.
			return fmt.Errorf("line longer than %d bytes", 1<<16)
		}
		if len(line) > 0 {
			if ferr := fn(bytes.TrimSuffix(line, []byte{'\n'})); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// accuracy compares what a contender stored or printed (files, stamped or not) with what w's
// containers served: grown says the logs hold their 1% more.
func accuracy(w *workload, grown bool, stamped bool, files ...string) (lost, doubled int64, err error) {
	t := newTally()
	for _, f := range w.files {
		size := f.size
		if grown {
			size = -1
		}
		if err := t.served(f.path, size); err != nil {
			return 0, 0, err
		}
	}
	for _, p := range files {
		if err := t.stored(p, stamped); err != nil {
			return 0, 0, err
		}
	}
	lost, doubled = t.diff()
	return lost, doubled, nil
}
