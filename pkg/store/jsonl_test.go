package store

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestScanLines(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // longer than the read buffer, three times over
	refuse := errors.New("refused")
	tests := []struct {
		name     string
		data     string
		refuse   string // fn's error for this line
		want     []string
		wantSize int
		wantTail bool
		wantErr  error
	}{
		{name: "empty"},
		{name: "complete lines", data: "a\nbb\n", want: []string{"a", "bb"}, wantSize: 5},
		{name: "an empty line", data: "a\n\nc\n", want: []string{"a", "", "c"}, wantSize: 5},
		{name: "torn last line", data: "a\nbb", want: []string{"a"}, wantSize: 2, wantTail: true},
		{name: "NUL debris", data: "a\nb\x00\nc\n", want: []string{"a"}, wantSize: 2, wantTail: true},
		{name: "NULs to the end", data: "a\n\x00\x00\x00", want: []string{"a"}, wantSize: 2, wantTail: true},
		{name: "a line longer than the buffer", data: "a\n" + long + "\nb\n", want: []string{"a", long, "b"}, wantSize: len(long) + 5},
		{name: "a torn long line", data: "a\n" + long, want: []string{"a"}, wantSize: 2, wantTail: true},
		{name: "a line refused", data: "a\nb\nc\n", refuse: "b", want: []string{"a"}, wantSize: 2, wantTail: true, wantErr: refuse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time too: a line is gathered across reads.
			for _, one := range []bool{false, true} {
				var rd io.Reader = strings.NewReader(tt.data)
				if one {
					rd = iotest.OneByteReader(rd)
				}
				var got []string
				size, tail, err := scanLines(rd, func(n int, line []byte) error {
					if n != len(got)+1 {
						t.Errorf("line %d numbered %d", len(got)+1, n)
					}
					if tt.refuse != "" && string(line) == tt.refuse {
						return refuse
					}
					got = append(got, string(line))
					return nil
				})
				if !errors.Is(err, tt.wantErr) || size != int64(tt.wantSize) || tail != tt.wantTail {
					t.Errorf("one byte %v: size, tail, err = %d, %v, %v; want %d, %v, %v", one, size, tail, err, tt.wantSize, tt.wantTail, tt.wantErr)
				}
				if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
					t.Errorf("one byte %v: lines %.60q, want %.60q", one, got, tt.want)
				}
			}
		})
	}
}

func TestScanLinesReadError(t *testing.T) {
	broken := errors.New("I/O error")
	size, tail, err := scanLines(iotest.ErrReader(broken), func(int, []byte) error { return nil })
	if !errors.Is(err, broken) || size != 0 || !tail {
		t.Errorf("size, tail, err = %d, %v, %v; want 0, true, %v", size, tail, err, broken)
	}
}
