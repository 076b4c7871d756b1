package bucket_test

import (
	"bytes"
	"context"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// CommitLines keeps the long line's bytes: the next segment begins with them, its day is the
// long line's, and the segments put together are the log, each ending with a newline.
func TestBreak60BucketCommitLinesSegments(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	d, err := bucket.Open(ctx, mem, "logs", false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := d.Append("default", "p0", "c")
	if err != nil {
		t.Fatal(err)
	}
	lt := a.(store.LineTimer)
	day1 := time.Date(2024, 3, 9, 23, 59, 59, 0, time.UTC)
	day2 := day1.Add(2 * time.Second)
	w := func(s string) {
		if _, err := a.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	w("one\n")
	lt.LineAt(day1)
	a.EndLine()
	long := strings.Repeat("L", 3000)
	w(long[:1000])
	cp := store.Checkpoint{Instance: "i", Since: day1, Skip: 1, Lines: 1}
	if err := a.CommitLines(cp); err != nil {
		t.Fatal(err)
	}
	if err := a.CommitLines(cp); err != nil { // nothing new: no segment
		t.Fatal(err)
	}
	w(long[1000:] + "\n")
	lt.LineAt(day2)
	a.EndLine()
	w("par")
	cp.Skip, cp.Lines = 2, 2
	if err := a.CommitLines(cp); err != nil {
		t.Fatal(err)
	}
	if err := a.DropPartial(); err != nil { // a reconnect: served again whole
		t.Fatal(err)
	}
	w("partial\n")
	lt.LineAt(day2)
	a.EndLine()
	cp.Skip, cp.Lines = 3, 3
	if err := a.Commit(cp); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, k := range mem.Keys() {
		if strings.Contains(k, "/p0/c/") || strings.Contains(k, "p0/c") && strings.HasSuffix(k, ".gz") {
			segs = append(segs, k)
		}
	}
	sort.Strings(segs)
	var all bytes.Buffer
	for _, k := range segs {
		body, err := mem.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		b, _ := io.ReadAll(zr)
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("segment %s does not end with a line: %q", k, b[max(0, len(b)-20):])
		}
		all.Write(b)
	}
	want := "one\n" + long + "\npartial\n"
	if all.String() != want {
		t.Fatalf("segments %q hold %d bytes, want %d (%q…)", segs, all.Len(), len(want), all.String()[:min(all.Len(), 40)])
	}
	if len(segs) != 3 {
		t.Errorf("segments %q, want 3 (one per commit with new lines)", segs)
	}
	if len(segs) >= 2 && !strings.Contains(segs[1], "2024-03-10") && !strings.Contains(segs[1], "20240310") {
		t.Errorf("the long line's segment %q is not of its day (2024-03-10)", segs[1])
	}
	t.Logf("segments: %q", segs)
}
