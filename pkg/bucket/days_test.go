package bucket_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// logLine is a line of a log and its time.
type logLine struct {
	text string
	at   time.Time
}

// appendRun opens the log of default/p0/c, writes lines after its checkpoint and commits them
// once per group in commits (a count of lines each); with crash, every put after the n-th
// fails, as if the process died. It returns the error of the last commit.
func appendRun(t *testing.T, mem *objstore.Memory, lines []logLine, commits []int, crash int) error {
	t.Helper()
	ctx := context.Background()
	d, err := bucket.Open(ctx, mem, "logs", false)
	if err != nil {
		t.Fatal(err)
	}
	if crash > 0 {
		crashAfter(mem, crash, nil)
		defer func() { mem.Fail = nil }()
	}
	a, err := d.Append("default", "p0", "c")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// The checkpoint's Lines says how many lines are stored.
	var cp store.Checkpoint
	if c := a.Checkpoint(); c != nil {
		cp = *c
	}
	cp.Instance = "i"
	i := int(cp.Lines)
	for _, n := range commits {
		for range n {
			if _, err := a.Write([]byte(lines[i].text + "\n")); err != nil {
				return err
			}
			a.(store.LineTimer).LineAt(lines[i].at)
			a.EndLine()
			i++
			cp.Lines++
		}
		if err := a.Commit(cp); err != nil {
			return err
		}
	}
	return nil
}

// TestOrphansAcrossDays: runs that crash between a segment and its checkpoint leave segments
// past the checkpoint; a later run that commits less than they did, across midnight, must
// not leave one of them where the next run does not look (listed after the checkpoint's last
// key) and then upload the same bytes again under another key.
func TestOrphansAcrossDays(t *testing.T) {
	d1 := time.Date(2024, 3, 9, 23, 59, 0, 0, time.UTC)
	d2 := d1.Add(2 * time.Minute)
	lines := []logLine{
		{"l0", d1}, {"l1", d1}, {"l2a", d2}, {"l2b", d2}, {"l3", d2}, {"l4", d2},
	}
	mem := objstore.NewMemory()
	// Puts in a run: the segments, then the checkpoint (no journal here).
	steps := []struct {
		commits []int
		crash   int // fail from this put on; 0: none
	}{
		{[]int{1}, 0},    // l0 stored
		{[]int{1}, 2},    // l1 as a segment, no checkpoint
		{[]int{3}, 3},    // l1 (the same segment), then l2a l2b as one, no checkpoint
		{[]int{4}, 4},    // the two again, then l3, no checkpoint
		{[]int{1, 1}, 0}, // l1 (the same), then l2a alone: a segment on the next day
		{[]int{3}, 0},    // l2b l3 l4
	}
	for i, s := range steps {
		if err := appendRun(t, mem, lines, s.commits, s.crash); err != nil && s.crash == 0 {
			t.Fatalf("step %d: %v", i, err)
		}
		checkDisjoint(t, mem)
	}
	var want strings.Builder
	for _, l := range lines {
		want.WriteString(l.text + "\n")
	}
	if got := readBucket(t, mem, false); got != want.String() {
		t.Fatalf("the bucket's log is %q, want %q", got, want.String())
	}
}
