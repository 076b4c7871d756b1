package bucket_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// Two writers on one container (one lost its lease without knowing it yet): the one that saves
// second is refused, and neither its checkpoint nor a deletion replaces what the first saved.
func TestSecondWriterFenced(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	open := func() store.Appender {
		d, err := bucket.Open(ctx, mem, "p", false)
		if err != nil {
			t.Fatal(err)
		}
		l, err := d.Append("ns", "pod", "c")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	write := func(l store.Appender, text string) {
		if _, err := l.Write([]byte(text + "\n")); err != nil {
			t.Fatal(err)
		}
		l.EndLine()
	}
	cp := store.Checkpoint{Instance: "i", Last: time.Unix(100, 0)}
	// Both start from the same checkpoint.
	first := open()
	write(first, "a")
	if err := first.Commit(cp); err != nil {
		t.Fatal(err)
	}
	first.Close()
	stale, fresh := open(), open()
	write(fresh, "b-fresh")
	if err := fresh.Commit(cp); err != nil {
		t.Fatal(err)
	}
	write(stale, "b-stale-and-longer")
	err := stale.Commit(cp)
	if !errors.Is(err, objstore.ErrChanged) {
		t.Fatalf("the stale writer's commit: %v, want ErrChanged", err)
	}
	d, err := bucket.OpenRead(ctx, mem, "p")
	if err != nil {
		t.Fatal(err)
	}
	segs, got, err := d.Segments("ns", "pod", "c")
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != int64(len("a\nb-fresh\n")) || len(segs) != 2 {
		t.Fatalf("after the stale commit: checkpoint size %d, %d segments; want the fresh writer's", got.Size, len(segs))
	}
}
