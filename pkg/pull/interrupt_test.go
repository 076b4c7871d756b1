package pull

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// TestPullInterrupted pulls while the bucket fails a random segment's fetch (a pull stopped
// midway), then pulls again: the file is the local export's, whatever the first pull left.
func TestPullInterrupted(t *testing.T) {
	for seed := int64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			timestamps := seed%2 == 0
			ctx := context.Background()
			srv := logserver.New(t)
			srv.AddPod("default", "p0", "c")
			client := srv.Client()
			opts := export.Options{Timestamps: timestamps, CommitBytes: 200}
			local := openDir(t, t.TempDir(), timestamps)
			mem := objstore.NewMemory()
			dst := t.TempDir()
			now := time.Now().Add(-time.Hour)
			for round := range 5 {
				var entries []logserver.Entry
				for i := range 5 + rng.Intn(40) {
					entries = append(entries, logserver.Entry{Time: now, Text: fmt.Sprintf("round %d line %d %s", round, i%4, strings.Repeat("y", rng.Intn(30)))})
				}
				srv.Append("default", "p0", "c", entries...)
				now = now.Add(time.Second)
				d, err := bucket.Open(ctx, mem, "p", timestamps)
				if err != nil {
					t.Fatal(err)
				}
				tgt := target.Of(srv.Pod("default", "p0"), "c")
				for _, e := range []*export.Exporter{{Client: client, Dest: local, Options: opts}, {Client: client, Dest: d, Options: opts}} {
					if res := e.Export(ctx, tgt); res.Err != nil {
						t.Fatal(res.Err)
					}
				}
				// The pull fails at the n-th segment it fetches.
				n, gets := 1+rng.Intn(6), 0
				errStop := errors.New("stopped")
				mem.Fail = func(op, key string) error {
					if op == "get" && strings.HasSuffix(key, ".log.gz") {
						gets++
						if gets >= n {
							return errStop
						}
					}
					return nil
				}
				dir := openDir(t, dst, timestamps)
				p := &Puller{Bucket: mem, Src: d, Dst: dir, Root: dst}
				rs, err := p.Pull(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rs {
					if r.Err != nil && !errors.Is(r.Err, errStop) {
						t.Fatalf("round %d: the interrupted pull: %v", round, r.Err)
					}
				}
				_ = dir.Close()
				mem.Fail = nil
				pullInto(t, mem, d, dst, timestamps, Options{})
				want := readFile(t, filepath.Join(local.Path("default"), "p0", "c.log"))
				if got := readFile(t, filepath.Join(dst, "default", "p0", "c.log")); got != want {
					t.Fatalf("round %d (stopped at fetch %d): pulled file differs from the local export:\npulled: %q\nlocal:  %q", round, n, got, want)
				}
			}
		})
	}
}
