// Package objstoretest holds the contract every objstore.Bucket keeps, as a test that runs against
// any of them: the in-memory fake of the unit tests and a real S3 server are held to the same one.
package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
)

// Options size the conformance test.
type Options struct {
	// Many is the number of keys of the paging test: more than a server's page (1000 on AWS)
	// unless the bucket was made with a small page size.
	Many int
}

// Run checks b under prefix (which should hold nothing: keys are created and deleted there).
func Run(t *testing.T, b objstore.Bucket, prefix string, opts Options) {
	if opts.Many == 0 {
		opts.Many = 1100
	}
	ctx := context.Background()
	t.Run("GetMissing", func(t *testing.T) {
		if _, err := b.Get(ctx, prefix+"missing"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
		}
	})
	t.Run("PutGet", func(t *testing.T) {
		bodies := map[string][]byte{
			prefix + "pg/empty":          {},
			prefix + "pg/binary":         {0, 1, 2, 0xff, '\n', 0},
			prefix + "pg/a b+c%d=e&ü.gz": []byte("odd characters in the key"),
			prefix + "pg/big":            bytes.Repeat([]byte("0123456789abcdef"), 1<<16), // 1 MiB
		}
		for k, v := range bodies {
			if err := b.Put(ctx, k, v, objstore.PutOptions{ContentType: "application/octet-stream"}); err != nil {
				t.Fatalf("Put(%q): %v", k, err)
			}
		}
		for k, v := range bodies {
			got, err := b.Get(ctx, k)
			if err != nil {
				t.Fatalf("Get(%q): %v", k, err)
			}
			if !bytes.Equal(got, v) {
				t.Errorf("Get(%q) = %d bytes, want the %d put", k, len(got), len(v))
			}
		}
		k := prefix + "pg/binary"
		if err := b.Put(ctx, k, []byte("replaced"), objstore.PutOptions{}); err != nil {
			t.Fatalf("Put over %q: %v", k, err)
		}
		if got, err := b.Get(ctx, k); err != nil || string(got) != "replaced" {
			t.Errorf("Get(%q) after a plain put over it = %q, %v; want \"replaced\"", k, got, err)
		}
	})
	t.Run("PutIfAbsent", func(t *testing.T) {
		k := prefix + "cond/k"
		if err := b.Put(ctx, k, []byte("first"), objstore.PutOptions{IfAbsent: true}); err != nil {
			t.Fatalf("conditional Put of a new key: %v", err)
		}
		err := b.Put(ctx, k, []byte("second"), objstore.PutOptions{IfAbsent: true})
		if !errors.Is(err, objstore.ErrExists) {
			t.Errorf("conditional Put over an existing key: %v, want ErrExists", err)
		}
		if got, err := b.Get(ctx, k); err != nil || string(got) != "first" {
			t.Errorf("after a refused conditional put, Get = %q, %v; want \"first\"", got, err)
		}
		if err := b.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if err := b.Put(ctx, k, []byte("third"), objstore.PutOptions{IfAbsent: true}); err != nil {
			t.Errorf("conditional Put of a deleted key: %v", err)
		}
	})
	t.Run("PutIfMatch", func(t *testing.T) {
		// A writer that read a version overwrites only that version: the fence of a checkpoint.
		k := prefix + "match/k"
		e1, err := b.PutETag(ctx, k, []byte("v1"), objstore.PutOptions{})
		if err != nil || e1 == "" {
			t.Fatalf("PutETag = %q, %v; want an ETag", e1, err)
		}
		body, got, err := b.GetETag(ctx, k)
		if err != nil || got != e1 || string(body) != "v1" {
			t.Fatalf("GetETag = %q, %q, %v; want v1 with the put's ETag %q", body, got, err, e1)
		}
		e2, err := b.PutETag(ctx, k, []byte("v2"), objstore.PutOptions{IfMatch: e1})
		if err != nil || e2 == "" {
			t.Fatalf("PutETag with the current ETag = %q, %v", e2, err)
		}
		if _, err := b.PutETag(ctx, k, []byte("stale"), objstore.PutOptions{IfMatch: e1}); !errors.Is(err, objstore.ErrChanged) {
			t.Errorf("PutETag with a stale ETag: %v, want ErrChanged", err)
		}
		if body, err := b.Get(ctx, k); err != nil || string(body) != "v2" {
			t.Errorf("after a refused put, Get = %q, %v; want v2", body, err)
		}
		if _, err := b.PutETag(ctx, prefix+"match/missing", []byte("x"), objstore.PutOptions{IfMatch: e2}); !errors.Is(err, objstore.ErrChanged) {
			t.Errorf("PutETag with IfMatch of a missing key: %v, want ErrChanged", err)
		}
	})
	t.Run("PutIfAbsentRace", func(t *testing.T) {
		// The bucket's conditional put is what a writer fences others with: of writers racing
		// to create one key, exactly one wins, and the object is the winner's. (SeaweedFS makes
		// the losers of such a race wait about a second each: keep the numbers small.)
		const writers, rounds = 6, 3
		for r := 0; r < rounds; r++ {
			k := fmt.Sprintf("%srace/%d", prefix, r)
			var mu sync.Mutex
			var winners []int
			var g errgroup.Group
			for w := 0; w < writers; w++ {
				g.Go(func() error {
					err := b.Put(ctx, k, []byte(fmt.Sprint(w)), objstore.PutOptions{IfAbsent: true})
					switch {
					case err == nil:
						mu.Lock()
						winners = append(winners, w)
						mu.Unlock()
					case !errors.Is(err, objstore.ErrExists):
						return fmt.Errorf("writer %d: %w", w, err)
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			if len(winners) != 1 {
				t.Fatalf("round %d: %d writers created %s (%v), want exactly 1", r, len(winners), k, winners)
			}
			if got, err := b.Get(ctx, k); err != nil || string(got) != fmt.Sprint(winners[0]) {
				t.Errorf("round %d: %s = %q, %v; want the winner's %d", r, k, got, err, winners[0])
			}
		}
	})
	t.Run("ListOrder", func(t *testing.T) {
		p := prefix + "order/"
		// Keys whose byte order differs from a naive one: a key that is a prefix of others,
		// punctuation below and above '/', non-ASCII.
		keys := []string{"a", "a/b", "a-", "a0", "a.", "b", "B", "z", "é", "~", "a/b/c", "ab"}
		rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for _, k := range keys {
			if err := b.Put(ctx, p+k, []byte(k), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		// Outside the prefix: must not be listed.
		if err := b.Put(ctx, prefix+"order", []byte("x"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := b.Put(ctx, prefix+"orderz/a", []byte("x"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(keys)
		for _, after := range []string{"", "0", "a", "a/", "a/b", "ab", "z", "é", "~", "~~"} {
			var want []string
			for _, k := range keys {
				if after == "" || k > after {
					want = append(want, p+k)
				}
			}
			startAfter := ""
			if after != "" {
				startAfter = p + after
			}
			got := list(t, b, p, startAfter)
			if !equal(got, want) {
				t.Errorf("List(%q, after %q) = %q, want %q", p, startAfter, got, want)
			}
		}
		var sizes []int64
		if err := b.List(ctx, p, p+"a/b", func(o objstore.Object) error {
			sizes = append(sizes, o.Size)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(sizes) == 0 || sizes[0] != int64(len("a/b/c")) {
			t.Errorf("sizes listed after a/b: %v, want the first %d", sizes, len("a/b/c"))
		}
	})
	t.Run("ListPaging", func(t *testing.T) {
		p := prefix + "many/"
		want := make([]string, opts.Many)
		for i := range want {
			want[i] = fmt.Sprintf("%s%06d", p, i)
		}
		var g errgroup.Group
		g.SetLimit(8)
		for _, i := range rand.Perm(len(want)) {
			g.Go(func() error { return b.Put(ctx, want[i], []byte{byte(i)}, objstore.PutOptions{}) })
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := list(t, b, p, ""); !equal(got, want) {
			t.Errorf("List of %d keys: got %d, first difference at %d", len(want), len(got), firstDiff(got, want))
		}
		for _, i := range []int{0, 1, 999, 1000, len(want) / 2, len(want) - 2, len(want) - 1} {
			if i >= len(want) {
				continue
			}
			if got := list(t, b, p, want[i]); !equal(got, want[i+1:]) {
				t.Errorf("List after key %d: got %d keys, want %d, first difference at %d", i, len(got), len(want)-i-1, firstDiff(got, want[i+1:]))
			}
		}
		// An error from fn stops the listing, mid-page or at a page's end, and is returned.
		stop := errors.New("stop")
		for _, n := range []int{1, 7, 1000} {
			if n > len(want) {
				continue
			}
			calls := 0
			err := b.List(ctx, p, "", func(objstore.Object) error {
				calls++
				if calls == n {
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) || calls != n {
				t.Errorf("List stopped at object %d: %v after %d calls, want the stop error after %d", n, err, calls, n)
			}
		}
	})
	t.Run("Delete", func(t *testing.T) {
		p := prefix + "del/"
		for _, k := range []string{"a", "b", "c"} {
			if err := b.Put(ctx, p+k, []byte(k), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Delete(ctx, p+"b"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, p+"b"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get of a deleted key: %v, want ErrNotFound", err)
		}
		if got := list(t, b, p, ""); !equal(got, []string{p + "a", p + "c"}) {
			t.Errorf("List after a delete = %q", got)
		}
		for _, k := range []string{p + "b", p + "never"} {
			if err := b.Delete(ctx, k); err != nil {
				t.Errorf("Delete of missing %q: %v, want nil", k, err)
			}
		}
	})
}

func list(t *testing.T, b objstore.Bucket, prefix, startAfter string) []string {
	t.Helper()
	var keys []string
	if err := b.List(context.Background(), prefix, startAfter, func(o objstore.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatalf("List(%q, after %q): %v", prefix, startAfter, err)
	}
	return keys
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

func firstDiff(a, b []string) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return len(a)
}
