package store

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPeek compares what a run pays for a finished container's log: a look (Peek) against
// opening and closing it (OpenLog), the cost Peek saves.
func BenchmarkPeek(b *testing.B) {
	const logs = 500
	dir := b.TempDir()
	d, err := Open(dir, false)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for i := range logs {
		l, err := d.OpenLog("ns", fmt.Sprintf("p%d", i), "c")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Write([]byte("one\n")); err != nil {
			b.Fatal(err)
		}
		l.EndLine()
		if err := l.Commit(Checkpoint{Instance: "i", Since: time.Unix(1, 0), Skip: 1, Complete: "i"}); err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("peek", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, cp, err := d.Peek("ns", fmt.Sprintf("p%d", i%logs), "c"); cp == nil || err != nil {
				b.Fatal(cp, err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			l, err := d.OpenLog("ns", fmt.Sprintf("p%d", i%logs), "c")
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
