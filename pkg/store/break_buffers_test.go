package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Random writes, line ends, flushes, partial lines dropped, idles (the write buffer given back)
// and commits against a model of what the file must hold, with the buffer kept small or not:
// lines around each size of the write buffer (writeBufferSizes), written in pieces of any size. After
// every commit the checkpoint covers exactly the complete lines written, in order, once; a small
// log never holds more than its small buffer; and after Close the file is what the last commit
// covered.
func TestBreakLogBuffers(t *testing.T) {
	sizes := []int{0, 1, 37, writeBufferSize + 150<<10}
	for _, n := range writeBufferSizes {
		sizes = append(sizes, n-1, n, n+1, 3*n/2+5)
	}
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			small := seed%2 == 0
			dir := t.TempDir()
			d := mustOpen(t, dir)
			defer d.Close()
			l := mustOpenLog(t, d, "ns", "p", "c")
			if small {
				l.KeepBufferSmall()
			}
			var lines, committed string // complete lines written; what the last commit covers
			partial := ""               // the line being written
			write := func(s string) {
				for len(s) > 0 {
					n := min(len(s), 1+rng.IntN(len(s)+smallWriteBufferSize))
					if _, err := l.Write([]byte(s[:n])); err != nil {
						t.Fatal(err)
					}
					s = s[n:]
					if small && cap(l.buf) > smallWriteBufferSize {
						t.Fatalf("a small log holds a buffer of %d bytes", cap(l.buf))
					}
					if rng.IntN(4) == 0 {
						l.Idle() // must keep what is not in the file
					}
				}
			}
			for i := range 60 {
				switch k := rng.IntN(10); {
				case k < 5: // a line, or the end of the one begun
					text := fmt.Sprintf("%d:%s\n", i, strings.Repeat("x", sizes[rng.IntN(len(sizes))]))
					if partial != "" {
						text = partial + text
						write(text[len(partial):])
					} else {
						write(text)
					}
					l.EndLine()
					lines += text
					partial = ""
				case k < 6: // a line begun, not ended
					if partial == "" {
						partial = fmt.Sprintf("%d:%s", i, strings.Repeat("p", sizes[rng.IntN(len(sizes))]))
						write(partial)
					}
				case k < 7: // the stream ended inside the line: it comes again from its start
					if err := l.DropPartial(); err != nil {
						t.Fatal(err)
					}
					partial = ""
					l.Idle()
				case k < 8:
					if err := l.Flush(); err != nil {
						t.Fatal(err)
					}
					l.Idle()
				default:
					if err := l.Commit(Checkpoint{Instance: "i", Lines: int64(strings.Count(lines, "\n"))}); err != nil {
						t.Fatal(err)
					}
					partial = "" // dropped by the commit
					committed = lines
					if l.Committed() != int64(len(committed)) {
						t.Fatalf("commit covers %d bytes, want %d", l.Committed(), len(committed))
					}
					l.Idle()
					if l.bufp != nil {
						t.Fatal("a committed log holds a buffer after Idle")
					}
				}
				if l.Length() != int64(len(lines)) {
					t.Fatalf("op %d: length %d, want %d", i, l.Length(), len(lines))
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, "ns", "p", "c.log")
			if committed == "" {
				if _, err := os.Stat(name); err == nil {
					t.Fatal("a log never committed is left")
				}
				return
			}
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != committed {
				t.Fatalf("file of %d bytes, want the %d committed", len(b), len(committed))
			}
			l = mustOpenLog(t, d, "ns", "p", "c")
			defer l.Close()
			if cp := l.Checkpoint(); cp == nil || cp.Size != int64(len(committed)) {
				t.Fatalf("checkpoint %+v, want size %d", cp, len(committed))
			}
		})
	}
}
