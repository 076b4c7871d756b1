package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A followed log gives its write buffer back while it waits for its next line (Idle), and takes
// one again with the next Write: the file and its checkpoint must come out as if it had kept it,
// and a buffer that holds what is not in the file yet (a line not ended, the tail of a long line
// written in part) is kept.
func TestLogIdleGivesBufferBack(t *testing.T) {
	long := strings.Repeat("x", writeBufferSize+10) // in the file in part, its tail buffered
	type op struct {
		write   string
		endLine bool
		flush   bool
		idle    bool
		// held: whether the log holds a buffer after the op
		held bool
	}
	tests := []struct {
		name string
		ops  []op
		want string // the file after a Commit and Close
	}{
		{"idle after each flushed line", []op{
			{write: "a\n", endLine: true, flush: true, idle: true, held: false},
			{write: "b\n", endLine: true, held: true},
			{flush: true, idle: true, held: false},
			{idle: true, held: false},
		}, "a\nb\n"},
		{"a line not ended keeps the buffer", []op{
			{write: "a\n", endLine: true, flush: true, idle: true},
			{write: "c", flush: true, idle: true, held: true},
			{write: "d\n", endLine: true, flush: true, idle: true, held: false},
		}, "a\ncd\n"},
		{"a long line's buffered tail is kept", []op{
			{write: long, idle: true, held: true},
			{write: "\n", endLine: true, flush: true, idle: true, held: false},
		}, long + "\n"},
		{"idle before anything is written", []op{
			{idle: true, held: false},
			{write: "a\n", endLine: true, held: true},
		}, "a\n"},
		{"a line not ended is dropped after idle", []op{
			{write: "a\n", endLine: true, flush: true, idle: true},
			{write: long, idle: true, held: true},
		}, "a\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := mustOpen(t, dir)
			defer d.Close()
			l := mustOpenLog(t, d, "ns", "p", "c")
			for i, o := range tt.ops {
				if o.write != "" {
					if _, err := l.Write([]byte(o.write)); err != nil {
						t.Fatal(err)
					}
				}
				if o.endLine {
					l.EndLine()
				}
				if o.flush {
					if err := l.Flush(); err != nil {
						t.Fatal(err)
					}
				}
				if o.idle {
					l.Idle()
				}
				if held := l.bufp != nil; held != o.held {
					t.Fatalf("op %d: holds a buffer %v, want %v", i, held, o.held)
				}
			}
			if err := l.Commit(Checkpoint{Instance: "i", Lines: 1}); err != nil {
				t.Fatal(err)
			}
			l.Idle()
			if l.bufp != nil {
				t.Fatal("a committed log holds its buffer after Idle")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "ns", "p", "c.log"))
			if err != nil || !bytes.Equal(b, []byte(tt.want)) {
				t.Fatalf("file of %d bytes %.30q, %v; want %d bytes %.30q", len(b), b, err, len(tt.want), tt.want)
			}
			if cp := checkpointOf(t, d, "ns", "p", "c"); cp == nil || cp.Size != int64(len(tt.want)) {
				t.Fatalf("checkpoint %+v, want size %d", cp, len(tt.want))
			}
		})
	}
}

// A log kept small writes its buffer out when it fills up instead of taking a big one, and
// stores the same bytes.
func TestLogKeepBufferSmall(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	defer d.Close()
	l := mustOpenLog(t, d, "ns", "p", "c")
	l.KeepBufferSmall()
	var want bytes.Buffer
	for i := range 3 * smallWriteBufferSize / 10 {
		line := fmt.Sprintf("line %4d\n", i)
		want.WriteString(line)
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		l.EndLine()
		if cap(l.buf) != smallWriteBufferSize {
			t.Fatalf("line %d: write buffer of %d bytes, want %d", i, cap(l.buf), smallWriteBufferSize)
		}
	}
	long := strings.Repeat("x", 3*smallWriteBufferSize) + "\n"
	want.WriteString(long)
	if _, err := l.Write([]byte(long)); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
	if err := l.Commit(Checkpoint{Instance: "i"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "ns", "p", "c.log")); err != nil || !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("file of %d bytes, %v; want %d bytes", len(b), err, want.Len())
	}
}
