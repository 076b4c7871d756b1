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
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/logexport/kubectl-logexport/pkg/logline"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// idleLog is a served log for the idle attacks: lines of every length around the reader's and the
// log's small (4 KiB) and full (logline.DefaultBufferSize, store's 256 KiB) buffers, several per second, each with its timestamp.
type idleLog struct {
	lines []string // content
	at    []time.Time
}

func newIdleLog(rng *rand.Rand, n int) *idleLog {
	l := &idleLog{}
	full := logline.DefaultBufferSize
	sizes := []int{0, 1, 10, 100, 4<<10 - 40, 4 << 10, 4<<10 + 1, 9 << 10, full - 40, full + 7, full + 200<<10}
	for i := range n {
		size := sizes[rng.IntN(len(sizes))]
		if rng.IntN(3) > 0 {
			size = rng.IntN(50) // mostly short lines, as a follower sees them
		}
		l.lines = append(l.lines, fmt.Sprintf("%d-%s", i, strings.Repeat(string(rune('a'+i%26)), size)))
		l.at = append(l.at, ts(i/4, i))
	}
	return l
}

func (l *idleLog) served(i int) string {
	return l.at[i].Format("2006-01-02T15:04:05.000000000Z07:00") + " " + l.lines[i] + "\n"
}

// serve serves the lines from sinceTime on; a followed stream in random pieces with pauses around
// the commit interval (so that the timer's save, the stream's next bytes and the end of the wait
// come in every order), and then holds until the client goes.
func (l *idleLog) serve(seed uint64) http.Handler {
	var calls atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if servePod(w, r, func(string) string { return "u" }) {
			return
		}
		rng := rand.New(rand.NewPCG(seed, calls.Add(1)))
		var since time.Time
		if s := r.URL.Query().Get("sinceTime"); s != "" {
			since, _ = time.Parse(time.RFC3339, s)
		}
		var body strings.Builder
		for i := range l.lines {
			if !l.at[i].Before(since) {
				body.WriteString(l.served(i))
			}
		}
		follow := r.URL.Query().Get("follow") == "true"
		b := body.String()
		for len(b) > 0 {
			n := len(b)
			if follow {
				switch k := rng.IntN(10); {
				case k < 6: // up to a line's end: the reader waits at a line boundary
					if i := strings.IndexByte(b, '\n'); i >= 0 {
						n = i + 1
					}
				case k < 9:
					n = min(n, 1+rng.IntN(70<<10))
				}
			}
			if _, err := w.Write([]byte(b[:n])); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			b = b[n:]
			if follow {
				time.Sleep(time.Duration(rng.IntN(10000)) * time.Microsecond)
			}
		}
		if follow {
			<-r.Context().Done()
		}
	})
}

func (l *idleLog) want() string {
	var b strings.Builder
	for _, s := range l.lines {
		b.WriteString(s + "\n")
	}
	return b.String()
}

// A followed stream that waits for its next line saves from a timer while the stream goroutine
// reads (r.Wait), and gives its reader's and log's buffers back (Idle). Under -race, with a
// commit interval of 3 ms (no syncs, so that a save takes less) and a stream that pauses around it, lines of every length
// around the buffers' sizes, and the follower stopped at a random point: what is stored must be a
// prefix of the log up to a line's end that the checkpoint covers exactly (a second export adds
// exactly the rest, once).
func TestBreakIdleTimerSave(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			l := newIdleLog(rng, 60+rng.IntN(60))
			srv := httptest.NewServer(l.serve(seed))
			defer srv.Close()
			client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
			dir := t.TempDir()
			tgt := target.Target{Namespace: "ns", Pod: "p", PodUID: "u", Container: "app", Status: &benchStatus}
			run := func(follow bool, stopAfter int) Result {
				d, err := store.Open(dir, false, store.NoSync())
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				written := 0
				o := Options{Follow: follow, CommitInterval: 3 * time.Millisecond, Metrics: writtenFunc(func(time.Time) {
					if written++; written == stopAfter {
						// Stopped a little after a line, while the stream may wait or a save run.
						time.AfterFunc(time.Duration(rng.IntN(6000))*time.Microsecond, cancel)
					}
				})}
				e := &Exporter{Client: client, Dest: d, Options: o}
				return e.Export(ctx, tgt)
			}
			res := run(true, 1+rng.IntN(len(l.lines)))
			if res.Err != nil && !errors.Is(res.Err, context.Canceled) {
				t.Fatalf("follow: %v", res.Err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "ns", "p", "app.log"))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			want := l.want()
			if !strings.HasPrefix(want, string(b)) || (len(b) > 0 && b[len(b)-1] != '\n') {
				t.Fatalf("after the stopped follower: the file (%d bytes) is not a prefix of the log up to a line's end", len(b))
			}
			stored := int64(strings.Count(string(b), "\n"))
			res2 := run(false, -1)
			if res2.Err != nil {
				t.Fatalf("second export: %v", res2.Err)
			}
			b, err = os.ReadFile(filepath.Join(dir, "ns", "p", "app.log"))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != want || stored+res2.Lines != int64(len(l.lines)) {
				t.Fatalf("file of %d bytes (want %d), %d+%d lines stored (want %d)", len(b), len(want), stored, res2.Lines, len(l.lines))
			}
		})
	}
}
