package export

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/logexport/kubectl-logexport/pkg/logline"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// newFollowBufLog is newIdleLog with lines around the line reader's steps (1 KiB, 8, 64, 256),
// timestamp prefix (31 bytes) included, and the log's 4 KiB write buffer.
func newFollowBufLog(rng *rand.Rand, n int) *idleLog {
	l := &idleLog{}
	var sizes []int
	for _, b := range []int{logline.LineBufferSize, 8 << 10, 64 << 10, logline.DefaultBufferSize, 4 << 10} {
		for _, d := range []int{-40, -33, -32, -31, -30, -1, 0, 1} {
			sizes = append(sizes, max(0, b+d))
		}
	}
	for i := range n {
		size := sizes[rng.IntN(len(sizes))]
		if rng.IntN(3) > 0 {
			size = rng.IntN(50)
		}
		pre := fmt.Sprintf("%d-", i)
		l.lines = append(l.lines, pre+strings.Repeat(string(rune('a'+i%26)), max(0, size-len(pre))))
		l.at = append(l.at, ts(i/4, i))
	}
	return l
}

// Many followed exports at once (sharing the reader's and the log's pools), each stopped at a
// random point while its stream waits or its timer saves, then resumed without follow: every
// file is exactly its log, each line stored once.
func TestBreakFollowBufConcurrentExports(t *testing.T) {
	for seed := range followBufSeeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			l := newFollowBufLog(rng, 40+rng.IntN(40))
			srv := httptest.NewServer(l.serve(seed))
			defer srv.Close()
			client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, QPS: -1})
			dir := t.TempDir()
			d, err := store.Open(dir, false, store.NoSync())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			const pods = 16
			want := l.want()
			var wg sync.WaitGroup
			stored := make([]int64, pods)
			for p := range pods {
				wg.Add(1)
				go func() {
					defer wg.Done()
					prng := rand.New(rand.NewPCG(seed, uint64(p)))
					tgt := target.Target{Namespace: "ns", Pod: fmt.Sprint("p", p), PodUID: "u", Container: "app", Status: &benchStatus}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					stopAfter := 1 + prng.IntN(len(l.lines))
					delay := time.Duration(prng.IntN(6000)) * time.Microsecond
					written := 0
					o := Options{Follow: true, CommitInterval: 3 * time.Millisecond, Metrics: writtenFunc(func(time.Time) {
						if written++; written == stopAfter {
							time.AfterFunc(delay, cancel)
						}
					})}
					o.BufferSize = []int{0, 0, 0, 100, 2000, 5000, 9000}[prng.IntN(7)]
					res := (&Exporter{Client: client, Dest: d, Options: o}).Export(ctx, tgt)
					if res.Err != nil && !errors.Is(res.Err, context.Canceled) {
						t.Errorf("pod %d follow: %v", p, res.Err)
						return
					}
					b, err := os.ReadFile(filepath.Join(dir, "ns", tgt.Pod, "app.log"))
					if err != nil && !os.IsNotExist(err) {
						t.Error(err)
						return
					}
					if !strings.HasPrefix(want, string(b)) || (len(b) > 0 && b[len(b)-1] != '\n') {
						t.Errorf("pod %d: after the stopped follower the file (%d bytes) is not a prefix of the log up to a line's end", p, len(b))
						return
					}
					stored[p] = int64(strings.Count(string(b), "\n"))
					res2 := (&Exporter{Client: client, Dest: d}).Export(context.Background(), tgt)
					if res2.Err != nil {
						t.Errorf("pod %d second export: %v", p, res2.Err)
						return
					}
					b, _ = os.ReadFile(filepath.Join(dir, "ns", tgt.Pod, "app.log"))
					if string(b) != want || stored[p]+res2.Lines != int64(len(l.lines)) {
						t.Errorf("pod %d: file of %d bytes (want %d), %d+%d lines (want %d)", p, len(b), len(want), stored[p], res2.Lines, len(l.lines))
					}
				}()
			}
			wg.Wait()
		})
	}
}

// A followed stream whose only line is no log line and ends without its newline: the error
// quotes what was served.
func TestBreakFollowBufEOFMessage(t *testing.T) {
	for _, n := range []int{5, 119, 120, 121, logline.LineBufferSize - 1, logline.LineBufferSize, logline.LineBufferSize + 1, 9000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			body := "failed to create fsnotify watcher: too many open files" + strings.Repeat("x", max(0, n-54))
			body = body[:n]
			srv := httptest.NewServer(serveBody(body))
			defer srv.Close()
			client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
			d, err := store.Open(t.TempDir(), false, store.NoSync())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			tgt := target.Target{Namespace: "ns", Pod: "p", PodUID: "u", Container: "app", Status: &benchStatus}
			res := (&Exporter{Client: client, Dest: d, Options: Options{Follow: true, CommitInterval: time.Hour}}).Export(context.Background(), tgt)
			if res.Err == nil || !strings.Contains(res.Err.Error(), fmt.Sprintf("%q", body[:min(n, 120)])) {
				t.Fatalf("error %v", res.Err)
			}
		})
	}
}

func serveBody(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if servePod(w, r, func(string) string { return "u" }) {
			return
		}
		_, _ = w.Write([]byte(body))
	})
}

func followBufSeeds() uint64 {
	var n uint64 = 6
	if s := os.Getenv("FOLLOWBUF_SEEDS"); s != "" {
		fmt.Sscan(s, &n)
	}
	return n
}
