package model

// Adversarial test from the review of 60a547a (follow: export.Gone reports what a checkpoint
// says is lost of a pod that went before its container's first export).

import (
	"context"
	"encoding/json"
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
//
// "request": the pod deleted is the one that got the stream, after the follower gave it its turn
// and before its request came (a loaded machine): the request meets a 404, nothing is served, and
// the loss is the same. The follower took that export for a read of the log and reported nothing.
func TestBreakFollowQueuedPodDeletedAfterEarlierExport(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replaced bool
		// request: the pod deleted is the one whose turn came, before its request.
		request bool
	}{
		{name: "replaced", replaced: true},
		{name: "same pod"},
		{name: "replaced, deleted before its request", replaced: true, request: true},
		{name: "same pod, deleted before its request", request: true},
	} {
		replaced := tc.replaced
		t.Run(tc.name, func(t *testing.T) {
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
			// turn receives the pod whose stream's turn came first ("request": its export then
			// waits for requestNow).
			turn, requestNow := make(chan string, 10), make(chan struct{})
			f := &follow.Follower{
				Client: client, Scope: podselect.Scope{Namespace: ns},
				Export: func(ctx context.Context, t target.Target, follow bool) export.Result {
					if follow {
						select {
						case turn <- t.Pod:
						default:
						}
						if tc.request {
							select {
							case <-requestNow:
							case <-ctx.Done():
							}
						}
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
			// The stream counts as open before its request is made: which pod waits is known
			// from the turn, not from the requests so far.
			var deleted string
			select {
			case deleted = <-turn:
			case <-time.After(10 * time.Second):
				cancel()
				t.Fatal("no stream's turn came")
			}
			if !tc.request {
				// The pod that waits for its turn is deleted.
				deleted = map[string]string{"p0": "p1", "p1": "p0"}[deleted]
			}
			if asked(deleted) != 0 {
				t.Fatalf("%s was asked for its log before its deletion", deleted)
			}
			srv.Delete(ns, deleted)
			close(requestNow)
			waitFor("the deleted pod's container to leave", func() bool { return f.Stats().Containers == 1 })
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
				if r.Pod == deleted {
					gaps = append(gaps, r.Gaps...)
				}
			}
			stored := readFile(t, dir, deleted)
			kept := keptGaps(t, dir, deleted)
			t.Logf("deleted %s: file %q, gaps %v, kept %v", deleted, stored, gaps, kept)
			if strings.Contains(stored, deleted+"-2\n") {
				return
			}
			covers := func(from time.Time, to *time.Time) bool {
				return !lostAt.Before(from) && (to == nil || !lostAt.After(*to))
			}
			reported := false
			for _, g := range gaps {
				reported = reported || covers(g.From, g.To)
			}
			if !reported {
				t.Errorf("%s-2, served by the API until %s was deleted before its container's request, is neither stored nor inside a reported gap (gaps %v)", deleted, deleted, gaps)
			}
			for _, g := range kept {
				if covers(g.From, g.To) {
					return
				}
			}
			t.Errorf("%s-2 is neither stored nor inside a gap kept in the directory (kept %v)", deleted, kept)
		})
	}
}

// keptGaps returns the gaps of a pod's container c that the directory keeps in its namespace's
// gap file.
func keptGaps(t *testing.T, dir, pod string) []store.Gap {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".logexport", "gaps", ns+".jsonl"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var gaps []store.Gap
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var rec struct {
			Pod, Container string
			store.Gap
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("gap file line %q: %v", line, err)
		}
		if rec.Pod == pod && rec.Container == "c" {
			gaps = append(gaps, rec.Gap)
		}
	}
	return gaps
}

func readFile(t *testing.T, dir, pod string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ns, pod, "c.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
