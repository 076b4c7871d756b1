package export

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// writtenFunc is a Metrics that calls a function for each line written.
type writtenFunc func(time.Time)

func (f writtenFunc) Written(ts time.Time)                 { f(ts) }
func (writtenFunc) Saved(namespace string, lines, b int64) {}
func (writtenFunc) SaveFailed(namespace string, err error) {}

// A stream cut inside a line's timestamp (a follower stopped, a connection broken, a frame
// boundary in the middle of the prefix) is a stream that failed, not a log line without a
// timestamp: a follower stopped by SIGTERM reported hundreds of containers failed, and exited 1,
// when their streams were cut there. A line without a timestamp is still refused.
func TestStreamCutInsideTimestamp(t *testing.T) {
	first := ts(1, 0).Format(time.RFC3339Nano) + " a\n"
	tests := []struct {
		name string
		// body is served, then: cut aborts the connection, hold waits for the client to go.
		body       string
		cut, hold  bool
		follow     bool
		cancelLine bool // the run is stopped once the first line is written
		// wantErr is a text the error must have; wantCanceled: it must be the run's stop.
		wantErr      string
		wantCanceled bool
	}{
		{name: "connection broken", body: first + "2024-01-0", cut: true, wantErr: "unexpected EOF"},
		{name: "stream ended", body: first + "2024-01-0", wantErr: "unexpected EOF"},
		{name: "follower stopped", body: first + "2024-01-0", hold: true, follow: true, cancelLine: true, wantCanceled: true},
		{name: "no timestamp", body: first + "no-timestamp-here\n", wantErr: "log line without timestamp"},
		{name: "no timestamp, unterminated", body: first + "no-timestamp-here", wantErr: "unexpected EOF"},
		// What a kubelet or kwok writes into the stream when it fails after the headers: the
		// error names it.
		{name: "the node's error", body: first + "failed to create fsnotify watcher: too many open files",
			wantErr: `the stream ended inside a line, "failed to create fsnotify watcher: too many open files": unexpected EOF`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if servePod(w, r, func(string) string { return "u" }) {
					return
				}
				_, _ = io.WriteString(w, tt.body)
				w.(http.Flusher).Flush()
				switch {
				case tt.cut:
					panic(http.ErrAbortHandler)
				case tt.hold:
					<-r.Context().Done()
				}
			}))
			defer srv.Close()
			client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
			dir := t.TempDir()
			d, err := store.Open(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := Options{Follow: tt.follow, CommitInterval: time.Hour}
			if tt.cancelLine {
				o.Metrics = writtenFunc(func(time.Time) { cancel() })
			}
			e := &Exporter{Client: client, Dest: d, Options: o}
			res := e.Export(ctx, target.Target{Namespace: "ns", Pod: "p", PodUID: "u", Container: "app", Status: &benchStatus})
			switch {
			case res.Err == nil:
				t.Fatal("no error")
			case tt.wantCanceled && !errors.Is(res.Err, context.Canceled):
				t.Fatalf("error %v, want the run's stop", res.Err)
			case !tt.wantCanceled && !strings.Contains(res.Err.Error(), tt.wantErr):
				t.Fatalf("error %v, want %q", res.Err, tt.wantErr)
			}
			// What came before the cut is stored, once.
			if b, err := os.ReadFile(filepath.Join(dir, "ns", "p", "app.log")); err != nil || string(b) != "a\n" || res.Lines != 1 {
				t.Fatalf("file %q (%v), %d lines; want the line before the cut", b, err, res.Lines)
			}
		})
	}
}

// A followed stream reads and writes with small buffers, which take the full size only for a
// line that does not fit: a 2 MiB line between short ones is stored whole, once, and the
// stream goes on with the next.
func TestFollowLongLine(t *testing.T) {
	long := strings.Repeat("x", 2<<20)
	served := []string{"a", long, "b", strings.Repeat("y", 5000), "c"}
	var body strings.Builder
	for i, l := range served {
		body.WriteString(ts(1, i).Format(time.RFC3339Nano) + " " + l + "\n")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if servePod(w, r, func(string) string { return "u" }) {
			return
		}
		// Line by line, as a container logs them, then the stream waits for more.
		for _, l := range strings.SplitAfter(body.String(), "\n") {
			_, _ = io.WriteString(w, l)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
	dir := t.TempDir()
	d, err := store.Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	written := 0
	o := Options{Follow: true, CommitInterval: time.Hour, Metrics: writtenFunc(func(time.Time) {
		if written++; written == len(served) {
			cancel()
		}
	})}
	e := &Exporter{Client: client, Dest: d, Options: o}
	res := e.Export(ctx, target.Target{Namespace: "ns", Pod: "p", PodUID: "u", Container: "app", Status: &benchStatus})
	if res.Err != nil && !errors.Is(res.Err, context.Canceled) {
		t.Fatal(res.Err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ns", "p", "app.log"))
	if want := strings.Join(served, "\n") + "\n"; err != nil || string(b) != want || res.Lines != int64(len(served)) {
		t.Fatalf("file of %d bytes (%v), %d lines; want %d bytes, %d lines", len(b), err, res.Lines, len(want), len(served))
	}
}
