package pull

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// TestPullEqualsLocalExport exports the same containers into a bucket and into a directory, a
// few times while they log; after each, a pull of the bucket into a third directory holds the
// same files, byte for byte, and fetches only the segments that are new.
func TestPullEqualsLocalExport(t *testing.T) {
	for _, timestamps := range []bool{false, true} {
		t.Run(fmt.Sprintf("timestamps=%v", timestamps), func(t *testing.T) {
			ctx := context.Background()
			srv := logserver.New(t)
			srv.AddPod("default", "web-1", "app", "sidecar")
			srv.AddPod("default", "db-0", "db")
			client := srv.Client()
			opts := export.Options{Timestamps: timestamps, CommitBytes: 300}
			local := openDir(t, t.TempDir(), timestamps)
			mem := objstore.NewMemory()
			var gets, segLists atomic.Int64
			mem.Fail = func(op, key string) error {
				if op == "get" && strings.HasSuffix(key, ".log.gz") {
					gets.Add(1)
				}
				if op == "list" && strings.Contains(key, "/logs/") {
					segLists.Add(1)
				}
				return nil
			}
			dst := t.TempDir()
			now := time.Now().Add(-time.Hour)
			for round := range 4 {
				for _, c := range []struct{ pod, container string }{{"web-1", "app"}, {"web-1", "sidecar"}, {"db-0", "db"}} {
					var entries []logserver.Entry
					for i := range 10 * (round + 1) {
						entries = append(entries, logserver.Entry{Time: now, Text: fmt.Sprintf("%s round %d line %d", c.container, round, i%3)})
					}
					srv.Append("default", c.pod, c.container, entries...)
				}
				now = now.Add(time.Second)
				d, err := bucket.Open(ctx, mem, "p", timestamps)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range []struct{ pod, container string }{{"web-1", "app"}, {"web-1", "sidecar"}, {"db-0", "db"}} {
					tgt := target.Of(srv.Pod("default", c.pod), c.container)
					for _, dest := range []store.Destination{local, d} {
						e := &export.Exporter{Client: client, Dest: dest, Options: opts}
						if res := e.Export(ctx, tgt); res.Err != nil {
							t.Fatal(res.Err)
						}
					}
				}
				before := gets.Load()
				segments := len(segmentKeys(mem))
				results := pullInto(t, mem, d, dst, timestamps, Options{})
				if len(results) != 3 {
					t.Fatalf("round %d: pulled %d containers, want 3", round, len(results))
				}
				for _, f := range []string{"web-1/app.log", "web-1/sidecar.log", "db-0/db.log"} {
					want := readFile(t, filepath.Join(local.Path("default"), f))
					if got := readFile(t, filepath.Join(dst, "default", f)); got != want {
						t.Fatalf("round %d: pulled %s differs from the local export:\npulled: %q\nlocal:  %q", round, f, got, want)
					}
				}
				if fetched := gets.Load() - before; round > 0 && fetched >= int64(segments) {
					t.Errorf("round %d: the pull fetched %d segments of %d: it should fetch only the new ones", round, fetched, segments)
				}
				before = gets.Load()
				lists := segLists.Load()
				for _, r := range pullInto(t, mem, d, dst, timestamps, Options{}) {
					if !r.UpToDate {
						t.Errorf("round %d: a second pull found %s new", round, r.ContainerRef)
					}
				}
				if fetched := gets.Load() - before; fetched != 0 {
					t.Errorf("round %d: a pull with nothing new fetched %d segments", round, fetched)
				}
				if n := segLists.Load() - lists; n != 0 {
					t.Errorf("round %d: a pull with nothing new listed segments %d times", round, n)
				}
			}
		})
	}
}

// TestPullSelects pulls only the pods a pattern matches.
func TestPullSelects(t *testing.T) {
	ctx := context.Background()
	srv := logserver.New(t)
	srv.AddPod("default", "web-1", "app")
	srv.AddPod("default", "db-0", "db")
	srv.Append("default", "web-1", "app", logserver.Entry{Time: time.Now(), Text: "w"})
	srv.Append("default", "db-0", "db", logserver.Entry{Time: time.Now(), Text: "d"})
	mem := objstore.NewMemory()
	d, err := bucket.Open(ctx, mem, "", false)
	if err != nil {
		t.Fatal(err)
	}
	e := &export.Exporter{Client: srv.Client(), Dest: d}
	for _, p := range []string{"web-1", "db-0"} {
		c := map[string]string{"web-1": "app", "db-0": "db"}[p]
		if res := e.Export(ctx, target.Of(srv.Pod("default", p), c)); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	dst := t.TempDir()
	rs := pullInto(t, mem, d, dst, false, Options{Pods: []*regexp.Regexp{regexp.MustCompile("^web")}})
	if len(rs) != 1 || rs[0].Pod != "web-1" {
		t.Fatalf("pulled %v, want web-1 only", rs)
	}
	if _, err := os.Stat(filepath.Join(dst, "default", "db-0")); !os.IsNotExist(err) {
		t.Errorf("db-0 was pulled: %v", err)
	}
}

func pullInto(t *testing.T, mem *objstore.Memory, d *bucket.Dest, dst string, timestamps bool, o Options) []Result {
	t.Helper()
	dir := openDir(t, dst, timestamps)
	defer dir.Close()
	p := &Puller{Bucket: mem, Src: d, Dst: dir, Root: dst, Options: o}
	rs, err := p.Pull(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Err != nil {
			t.Fatalf("pulling %v: %v", r.ContainerRef, r.Err)
		}
	}
	return rs
}

func openDir(t *testing.T, dir string, timestamps bool) *store.Dir {
	t.Helper()
	d, err := store.Open(dir, timestamps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func segmentKeys(m *objstore.Memory) []string {
	var out []string
	for _, k := range m.Keys() {
		if strings.HasSuffix(k, ".log.gz") {
			out = append(out, k)
		}
	}
	return out
}

// --since starts a first pull at the last segment that began before its day (which may hold
// lines of that day), and takes everything after.
func TestPullSince(t *testing.T) {
	ctx := context.Background()
	srv := logserver.New(t)
	srv.AddPod("default", "web", "app")
	day := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	var entries []logserver.Entry
	for _, e := range []struct {
		at   time.Time
		text string
	}{{day(1, 10), "d1-a"}, {day(1, 23), "d1-b"}, {day(2, 1), "d2-a"}, {day(2, 5), "d2-b"}, {day(3, 1), "d3-a"}} {
		entries = append(entries, logserver.Entry{Time: e.at, Text: e.text})
	}
	srv.Append("default", "web", "app", entries...)
	mem := objstore.NewMemory()
	d, err := bucket.Open(ctx, mem, "", false)
	if err != nil {
		t.Fatal(err)
	}
	// A segment per line.
	e := &export.Exporter{Client: srv.Client(), Dest: d, Options: export.Options{CommitBytes: 1}}
	if res := e.Export(ctx, target.Of(srv.Pod("default", "web"), "app")); res.Err != nil {
		t.Fatal(res.Err)
	}
	tests := []struct {
		since time.Time
		want  string
	}{
		{day(2, 12), "d1-b\nd2-a\nd2-b\nd3-a\n"},
		{day(3, 0), "d2-b\nd3-a\n"},
		{day(9, 0), "d3-a\n"},
		{day(1, 0), "d1-a\nd1-b\nd2-a\nd2-b\nd3-a\n"},
	}
	for _, tt := range tests {
		dst := t.TempDir()
		pullInto(t, mem, d, dst, false, Options{Since: tt.since})
		if got := readFile(t, filepath.Join(dst, "default", "web", "app.log")); got != tt.want {
			t.Errorf("--since %s: pulled %q, want %q", tt.since, got, tt.want)
		}
	}
}

// TestPullCheckpointMovedWithoutBytes: the bucket's checkpoint can change while the log does
// not grow (a pod replaced under the same name, whose new container has logged nothing yet; an
// instance found stored to its end). A pull must bring the local checkpoint along even then: an
// export into the pulled directory, and status, go by it. Found by the model test into a bucket.
func TestPullCheckpointMovedWithoutBytes(t *testing.T) {
	tests := []struct {
		name   string
		change func(srv *logserver.Server)
	}{
		{"pod replaced", func(srv *logserver.Server) { srv.Replace("default", "web-1") }},
		{"instance stored to its end", func(srv *logserver.Server) { srv.Terminate("default", "web-1", "app", 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			srv := logserver.New(t)
			srv.AddPod("default", "web-1", "app")
			srv.Append("default", "web-1", "app", logserver.Entry{Time: time.Now().Add(-time.Minute), Text: "a line"})
			mem := objstore.NewMemory()
			d, err := bucket.Open(ctx, mem, "p", false)
			if err != nil {
				t.Fatal(err)
			}
			export1 := func() {
				e := &export.Exporter{Client: srv.Client(), Dest: d}
				if res := e.Export(ctx, target.Of(srv.Pod("default", "web-1"), "app")); res.Err != nil {
					t.Fatal(res.Err)
				}
			}
			export1()
			dst := t.TempDir()
			pullInto(t, mem, d, dst, false, Options{})
			tt.change(srv)
			export1()
			want, err := d.Checkpoint("default", "web-1", "app")
			if err != nil {
				t.Fatal(err)
			}
			pullInto(t, mem, d, dst, false, Options{})
			dir := openDir(t, dst, false)
			got, err := dir.Checkpoint("default", "web-1", "app")
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || *got != *want {
				t.Errorf("pulled checkpoint = %+v, want the bucket's %+v", got, want)
			}
		})
	}
}
