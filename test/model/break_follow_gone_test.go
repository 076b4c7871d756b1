package model

// Adversarial test from the review of 60a547a (follow: export.Gone reports what a checkpoint
// says is lost of a pod that went before its container's first export).

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/follow"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// Two pods were exported by a one-shot run; each logs one more line; a follower starts with one
// stream (--max-log-requests 1), so one container waits for its turn; that pod is deleted before
// its turn comes. Its line after the checkpoint was served by the API until the deletion and is
// lost: nothing reports it. Gone (60a547a) reports exactly this loss, the tail after the
// checkpoint, when the checkpoint belongs to an older pod of the same name ("replaced"), but not
// when it belongs to the deleted pod itself ("same pod"), whose tail is just as lost; and since
// the name does not come back, no later run reports it either.
func TestBreakFollowQueuedPodDeletedAfterEarlierExport(t *testing.T) {
	for _, replaced := range []bool{true, false} {
		name := "same pod"
		if replaced {
			name = "replaced"
		}
		t.Run(name, func(t *testing.T) {
			srv := logserver.New(t)
			defer srv.Close()
			base := time.Now().Add(-time.Minute).Truncate(time.Second)
			for _, p := range []string{"p0", "p1"} {
				srv.AddPod(ns, p, "c")
				srv.Append(ns, p, "c", logserver.Entry{Time: base, Text: p + "-1"})
			}
			dir := t.TempDir()
			client := srv.Client()
			d, err := store.Open(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			once := &export.Exporter{Client: client, Dest: d}
			for _, p := range []string{"p0", "p1"} {
				if res := once.Export(context.Background(), target.Of(srv.Pod(ns, p), "c")); res.Err != nil || res.Lines != 1 {
					t.Fatalf("export %s: %d lines, %v", p, res.Lines, res.Err)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			// After the export: each pod logs one more line (or, "replaced", is replaced by a
			// pod of the same name that logs it).
			lostAt := base.Add(2 * time.Second)
			for _, p := range []string{"p0", "p1"} {
				if replaced {
					srv.Replace(ns, p)
				}
				srv.Append(ns, p, "c", logserver.Entry{Time: lostAt, Text: p + "-2"})
			}

			d, err = store.Open(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			once = &export.Exporter{Client: client, Dest: d}
			streaming := &export.Exporter{Client: client, Dest: d, Options: export.Options{Follow: true, CommitInterval: 50 * time.Millisecond}}
			f := &follow.Follower{
				Client: client, Scope: podselect.Scope{Namespace: ns},
				Export: func(ctx context.Context, t target.Target, follow bool) export.Result {
					if follow {
						return streaming.Export(ctx, t)
					}
					return once.Export(ctx, t)
				},
				Gone:       once.Gone,
				MaxStreams: 1, Resync: 10 * time.Minute, ShareAfter: time.Minute,
			}
			before := map[string]int{"p0": srv.LogRequests(ns, "p0", "c", ""), "p1": srv.LogRequests(ns, "p1", "c", "")}
			asked := func(p string) int { return srv.LogRequests(ns, p, "c", "") - before[p] }
			ctx, cancel := context.WithCancel(context.Background())
			type out struct {
				res []export.Result
				err error
			}
			done := make(chan out, 1)
			go func() {
				res, _, err := f.Run(ctx)
				done <- out{res, err}
			}()
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for !cond() {
					if time.Now().After(deadline) {
						cancel()
						t.Fatalf("timed out waiting for %s (stats %+v)", what, f.Stats())
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			waitFor("one stream open and one container waiting", func() bool {
				st := f.Stats()
				return st.Open == 1 && st.Waiting == 1
			})
			waiter := "p1"
			if asked("p1") > 0 {
				waiter = "p0"
			}
			if asked(waiter) != 0 {
				t.Fatalf("both containers were asked for their log")
			}
			srv.Delete(ns, waiter)
			waitFor("the waiter to leave", func() bool { return f.Stats().Containers == 1 })
			time.Sleep(200 * time.Millisecond)
			cancel()
			o := <-done
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if o.err != nil {
				t.Fatal(o.err)
			}
			var gaps []export.Gap
			for _, r := range o.res {
				if r.Pod == waiter {
					gaps = append(gaps, r.Gaps...)
				}
			}
			stored := readFile(t, dir, waiter)
			t.Logf("waiter %s: file %q, gaps %v", waiter, stored, gaps)
			if strings.Contains(stored, waiter+"-2\n") {
				return
			}
			for _, g := range gaps {
				if !lostAt.Before(g.From) && (g.To == nil || !lostAt.After(*g.To)) {
					return
				}
			}
			t.Errorf("%s-2, served by the API until %s was deleted while its container waited for a stream, is neither stored nor inside a reported gap (gaps %v)", waiter, waiter, gaps)
		})
	}
}

func readFile(t *testing.T, dir, pod string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ns, pod, "c.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
