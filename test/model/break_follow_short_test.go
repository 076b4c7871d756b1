package model

// Adversarial test from the review of d892ecf: a follower whose reads of a finished container
// the API server ends early (and normally).

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/follow"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// A finished container's first reads are cut short; then its pod is deleted. The follower took
// a read that served nothing, or a confirming read that stored more, for a confirmed end and
// never asked again (its lines lost with the pod, no gap), and a pod deleted before the
// confirming read left the unconfirmed end unreported. Now it reads on while a read stores more,
// and Gone reports an end read once as a possible gap.
func TestBreakFollowerShortReads(t *testing.T) {
	const all = "a-1\na-2\na-3\na-4\n"
	for _, tc := range []struct {
		name     string
		keeps    []int64 // bytes kept of the i-th log request (on to the line's end)
		deleteAt int     // the pod is deleted when this log request arrives; -1: after the reads
		wantAll  bool    // every line stored, no gap; else a prefix and a gap
	}{
		{name: "first read empty", keeps: []int64{0}, deleteAt: -1, wantAll: true},
		{name: "two short reads at different lines", keeps: []int64{1, 60}, deleteAt: -1, wantAll: true},
		{name: "one short read, deleted before the confirming read", keeps: []int64{1}, deleteAt: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := logserver.New(t)
			defer srv.Close()
			base := time.Now().Add(-time.Minute).Truncate(time.Second)
			srv.AddPod(ns, "p0", "c")
			for i, s := range []string{"a-1", "a-2", "a-3", "a-4"} {
				srv.Append(ns, "p0", "c", logserver.Entry{Time: base.Add(time.Duration(i) * time.Second), Text: s})
			}
			srv.Terminate(ns, "p0", "c", 0)
			var mu sync.Mutex
			n, m := 0, 0
			srv.OnLogRequest(func(ns, pod string, _ *corev1.PodLogOptions) {
				mu.Lock()
				i := m
				m++
				mu.Unlock()
				if i == tc.deleteAt {
					srv.Delete(ns, pod)
				}
			})
			srv.ShortenLogsFrom("", func(ns, pod string, _ *corev1.PodLogOptions) (int64, bool) {
				mu.Lock()
				defer mu.Unlock()
				i := n
				n++
				if i < len(tc.keeps) {
					return tc.keeps[i], tc.keeps[i] > 0
				}
				return -1, false
			})
			dir := t.TempDir()
			client := srv.Client()
			d, err := store.Open(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			once := &export.Exporter{Client: client, Dest: d}
			streaming := &export.Exporter{Client: client, Dest: d, Options: export.Options{Follow: true, CommitInterval: 50 * time.Millisecond}}
			f := &follow.Follower{Client: client, Scope: podselect.Scope{Namespace: ns},
				Export: func(ctx context.Context, t target.Target, follow bool) export.Result {
					if follow {
						return streaming.Export(ctx, t)
					}
					return once.Export(ctx, t)
				},
				Gone: once.Gone, RecordGaps: once.RecordGaps, Resync: 10 * time.Minute}
			ctx, cancel := context.WithCancel(context.Background())
			type out struct {
				res []export.Result
				err error
			}
			done := make(chan out, 1)
			go func() { res, _, err := f.Run(ctx); done <- out{res, err} }()
			for dl := time.Now().Add(10 * time.Second); tc.deleteAt < 0 && srv.LogRequests(ns, "p0", "c", "") < len(tc.keeps); {
				if time.Now().After(dl) {
					t.Fatal("the follower did not read the log")
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(2 * time.Second) // ample time to ask again
			if tc.deleteAt < 0 {
				srv.Delete(ns, "p0")
			}
			for dl := time.Now().Add(10 * time.Second); f.Stats().Containers != 0 && time.Now().Before(dl); {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			cancel()
			o := <-done
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			var gaps []export.Gap
			for _, r := range o.res {
				gaps = append(gaps, r.Gaps...)
			}
			file, kept := readFile(t, dir, "p0"), keptGaps(t, dir, "p0")
			switch {
			case tc.wantAll && (file != all || len(gaps) > 0 || len(kept) > 0):
				t.Errorf("file %q, gaps %v, recorded %v; want every line and no gap", file, gaps, kept)
			case !tc.wantAll && (len(kept) == 0 || file == "" || all[:len(file)] != file):
				t.Errorf("file %q, recorded gaps %v; want a prefix and a gap", file, kept)
			}
		})
	}
}
