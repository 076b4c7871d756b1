package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/iotest"
)

// break13Body is n lines of random length (some empty, some longer than the 256 KiB buffer).
func break13Body(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for i := range n {
		size := rng.IntN(200)
		switch rng.IntN(50) {
		case 0:
			size = 0
		case 1:
			size = 256<<10 + rng.IntN(3)
		}
		fmt.Fprintf(&b, "2026-11-30T00:00:%02dZ %d ", i%60, i)
		for range size {
			b.WriteByte("abc\t é\r"[rng.IntN(8)])
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// TestBreak13StoreBodyBytes: every byte stored and every line counted, however the body arrives
// (a byte a read, half reads, the last data with io.EOF), around the 256 KiB buffer's size.
func TestBreak13StoreBodyBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 6))
	dir := t.TempDir()
	bodies := [][]byte{{}, []byte("\n"), []byte("a\n"), break13Body(rng, 10), break13Body(rng, 3000), bytes.Repeat([]byte("x\n"), 128<<10), bytes.Repeat([]byte("y\n"), 128<<10+1)}
	readers := map[string]func([]byte) io.Reader{
		"plain":   func(b []byte) io.Reader { return bytes.NewReader(b) },
		"onebyte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"half":    func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"dataerr": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		"nowt":    func(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} },
	}
	n := 0
	for i, body := range bodies {
		for name, r := range readers {
			if name == "onebyte" && len(body) > 1<<20 {
				continue
			}
			n++
			file := filepath.Join(dir, "ns", fmt.Sprintf("pod-%d", i), name+".log")
			var lines int64
			if err := storeBody(file, r(body), &lines); err != nil {
				t.Fatalf("body %d %s: %v", i, name, err)
			}
			got, err := os.ReadFile(file)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("body %d %s: stored %d bytes (%v), want %d", i, name, len(got), err, len(body))
			}
			if want := int64(bytes.Count(body, []byte("\n"))); lines != want {
				t.Fatalf("body %d %s: %d lines, want %d", i, name, lines, want)
			}
		}
	}
	if err := syncStore(dir); err != nil {
		t.Fatal(err)
	}
}

// TestBreak13StoreBodyNoOverwrite: an existing file, an empty one, a symlink (even dangling, even
// to a file outside), or a directory at the name: refused, and the target left as it was.
func TestBreak13StoreBodyNoOverwrite(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(outside, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	pod := filepath.Join(dir, "ns", "p")
	if err := os.MkdirAll(filepath.Join(pod, "dir.log"), 0o700); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(pod, "file.log"), []byte("old\n"), 0o600))
	must(os.WriteFile(filepath.Join(pod, "empty.log"), nil, 0o600))
	must(os.Symlink(outside, filepath.Join(pod, "link.log")))
	must(os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(pod, "dangling.log")))
	for _, name := range []string{"file.log", "empty.log", "link.log", "dangling.log", "dir.log"} {
		var lines int64
		if err := storeBody(filepath.Join(pod, name), bytes.NewReader([]byte("new\n")), &lines); err == nil {
			t.Errorf("%s: stored over it", name)
		}
		if lines != 0 {
			t.Errorf("%s: %d lines counted of a body not stored", name, lines)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("the symlink's target now holds %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
		t.Error("the dangling symlink's target was created")
	}
	if b, _ := os.ReadFile(filepath.Join(pod, "file.log")); string(b) != "old\n" {
		t.Errorf("file.log now holds %q", b)
	}
}

// TestBreak13StoreBodyErrors: a body that fails midway is an error, and the lines counted are
// never more than those the body holds; the floor's goroutines storing into one pod's directory
// at once all succeed.
func TestBreak13StoreBodyErrors(t *testing.T) {
	dir := t.TempDir()
	var lines int64
	boom := errors.New("connection reset")
	body := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("l\n"), 300<<10)), iotest.ErrReader(boom))
	if err := storeBody(filepath.Join(dir, "ns", "p", "c.log"), body, &lines); !errors.Is(err, boom) {
		t.Errorf("error %v, want %v", err, boom)
	}
	if lines > 300<<10 {
		t.Errorf("%d lines counted, more than the body's", lines)
	}
	var wg sync.WaitGroup
	errs := make([]error, 64)
	counts := make([]int64, 64)
	for i := range 64 {
		wg.Go(func() {
			errs[i] = storeBody(filepath.Join(dir, "ns2", fmt.Sprintf("p%d", i%4), fmt.Sprintf("c%d.log", i)), bytes.NewReader(bytes.Repeat([]byte("z\n"), i)), &counts[i])
		})
	}
	wg.Wait()
	for i := range 64 {
		if errs[i] != nil || counts[i] != int64(i) {
			t.Errorf("%d: %v, %d lines", i, errs[i], counts[i])
		}
	}
}
