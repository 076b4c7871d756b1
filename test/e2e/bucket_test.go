package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/cmd"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
)

// bucketDest is a prefix of its own in the test bucket, and the environment that reaches it.
func bucketDest(t *testing.T) (dest string, env []string) {
	t.Helper()
	s := s3(t)
	return "s3://" + s.Bucket + "/" + "t-" + randID(), s.Env()
}

// bucketClient lists and reads what the plugin stored, through the plugin's own S3 client.
func bucketClient(t *testing.T, dest string) objstore.Bucket {
	t.Helper()
	s := s3(t)
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	u, err := objstore.ParseURL(dest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.NewS3(context.Background(), u, objstore.S3Config{Endpoint: s.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keys lists the keys under dest's prefix that have the given part.
func keys(t *testing.T, b objstore.Bucket, dest, part string) []string {
	t.Helper()
	u, _ := objstore.ParseURL(dest)
	var out []string
	err := b.List(context.Background(), u.Prefix+"/", "", func(o objstore.Object) error {
		if strings.Contains(o.Key, part) {
			out = append(out, o.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func exportTo(t *testing.T, env []string, args ...string) cmd.Summary {
	t.Helper()
	res := logexportEnv(t, env, append(args, "-o", "json")...)
	if res.code != 0 {
		t.Fatalf("kubectl logexport failed with exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	return decode(t, res.stdout)
}

// An export into a bucket, resumed: repeated lines, a second run that adds only what is new, a
// third that finds everything up to date; `pull` then makes a directory equal to a local export
// of the same pods, and `status` reads the bucket.
func TestBucketExportResumePull(t *testing.T) {
	ns := newNamespace(t)
	dest, env := bucketDest(t)
	local := t.TempDir()
	lr := newLog(t).add(at(0, 0), "same", "same", "other").add(at(1, 5), "same")
	lw := newLog(t).add(at(0, 0), "w1")
	createPod(t, ns, pod{name: "redis-0", containers: []container{{name: "app", log: lr}}})
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: lw}}})
	bargs := []string{"-n", ns, "-d", dest, "--lease-namespace", ns}

	s := exportTo(t, env, bargs...)
	if c := find(t, s, ns, "redis-0", "app"); c.Lines != 4 || c.Status != "ok" {
		t.Fatalf("first run into the bucket: %+v", c)
	}
	export(t, "-n", ns, "-d", local)
	lr.add(at(1, 5), "same", "same").add(at(2, 0), "new")
	lw.add(at(3, 0), "w2")
	s = exportTo(t, env, bargs...)
	if c := find(t, s, ns, "redis-0", "app"); c.Lines != 3 {
		t.Fatalf("second run into the bucket added %d lines, want 3", c.Lines)
	}
	export(t, "-n", ns, "-d", local)
	s = exportTo(t, env, bargs...)
	if c := find(t, s, ns, "redis-0", "app"); c.Lines != 0 || c.Status != "up to date" {
		t.Fatalf("third run into the bucket: %+v", c)
	}

	pulled := t.TempDir()
	res := logexportEnv(t, env, "pull", dest, "-d", pulled)
	if res.code != 0 {
		t.Fatalf("pull: exit %d\n%s", res.code, res.stderr)
	}
	for _, p := range []string{"redis-0", "web"} {
		want := readFile(t, filepath.Join(local, ns, p, "app.log"))
		assertFile(t, filepath.Join(pulled, ns, p, "app.log"), want)
	}
	assertFile(t, filepath.Join(pulled, ns, "redis-0", "app.log"), lines("same", "same", "other", "same", "same", "same", "new"))
	if res := logexportEnv(t, env, "pull", dest, "-d", pulled); res.code != 0 || strings.Count(res.stdout, "up to date") != 2 {
		t.Fatalf("a second pull: exit %d, want both up to date:\n%s%s", res.code, res.stdout, res.stderr)
	}
	// The pulled directory is an export's: a local run into it goes on from the checkpoints.
	lr.add(at(4, 0), "after")
	s = export(t, "-n", ns, "-d", pulled)
	if c := find(t, s, ns, "redis-0", "app"); c.Lines != 1 {
		t.Fatalf("a local run into the pulled directory added %d lines, want 1", c.Lines)
	}

	st := logexportEnv(t, env, "status", "-d", dest, "-o", "json")
	if st.code != 0 {
		t.Fatalf("status of the bucket: exit %d\n%s", st.code, st.stderr)
	}
	var status cmd.Status
	if err := json.Unmarshal([]byte(st.stdout), &status); err != nil {
		t.Fatal(err)
	}
	if len(status.Logs) != 2 || status.Logs[0].Pod != "redis-0" || status.Logs[0].Lines != 7 || len(status.Runs) != 3 {
		t.Fatalf("status of the bucket: %d logs, %d runs: %s", len(status.Logs), len(status.Runs), st.stdout)
	}
}

// killProxy forwards to the S3 server, and SIGKILLs the plugin when it first asks to save a
// checkpoint after uploading a segment: the crash between the two that the layout must survive.
type killProxy struct {
	mu       sync.Mutex
	proc     *os.Process
	segments int
	killed   bool
}

func (k *killProxy) handler(t *testing.T, target string) http.Handler {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			k.mu.Lock()
			switch {
			case strings.Contains(r.URL.Path, "/logs/"):
				k.segments++
			case strings.Contains(r.URL.Path, "/checkpoints/") && k.segments > 0 && !k.killed && k.proc != nil:
				_ = k.proc.Signal(syscall.SIGKILL)
				k.killed = true
				k.mu.Unlock()
				_, _ = io.Copy(io.Discard, r.Body)
				http.Error(w, "killed", http.StatusServiceUnavailable)
				return
			}
			k.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})
}

// A run killed after it uploaded a segment and before the checkpoint that covers it: the next run
// puts the same segment again, under the same key, with the same bytes, and the bucket ends with
// every line once.
func TestBucketKilledBetweenSegmentAndCheckpoint(t *testing.T) {
	ns := newNamespace(t)
	dest, env := bucketDest(t)
	s := s3(t)
	local := t.TempDir()
	l := newLog(t)
	for i := 0; i < 50; i++ {
		l.add(at(i, 0), seq("line", 40)...)
	}
	createPod(t, ns, pod{name: "worker", containers: []container{{name: "app", log: l}}})

	kp := &killProxy{}
	srv := &http.Server{Handler: kp.handler(t, s.Endpoint)}
	ln := listen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	proxied := append(append([]string(nil), env...), "AWS_ENDPOINT_URL=http://"+ln.Addr().String())
	c := pluginCmd(proxied, "-n", ns, "-d", dest, "--lease-namespace", ns)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	kp.mu.Lock()
	kp.proc = c.Process
	kp.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = c.Process.Kill()
		t.Fatalf("the run was not killed within 60s:\n%s", stderr.String())
	}
	if !kp.killed {
		t.Fatalf("the run ended without saving a checkpoint after a segment:\n%s", stderr.String())
	}
	b := bucketClient(t, dest)
	segs := keys(t, b, dest, "/logs/")
	if len(segs) != 1 || len(keys(t, b, dest, "/checkpoints/")) != 0 {
		t.Fatalf("after the kill: segments %v, checkpoints %v; want one segment and no checkpoint", segs, keys(t, b, dest, "/checkpoints/"))
	}
	before, err := b.Get(context.Background(), segs[0])
	if err != nil {
		t.Fatal(err)
	}

	exportTo(t, env, "-n", ns, "-d", dest, "--lease-namespace", ns)
	after := keys(t, b, dest, "/logs/")
	if len(after) != 1 || after[0] != segs[0] {
		t.Fatalf("after the next run: segments %v, want the killed run's %v put again", after, segs)
	}
	again, err := b.Get(context.Background(), segs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, again) {
		t.Fatalf("the segment was put again with other bytes (%d, were %d)", len(again), len(before))
	}
	export(t, "-n", ns, "-d", local)
	pulled := t.TempDir()
	if res := logexportEnv(t, env, "pull", dest, "-d", pulled); res.code != 0 {
		t.Fatalf("pull: exit %d\n%s", res.code, res.stderr)
	}
	assertFile(t, filepath.Join(pulled, ns, "worker", "app.log"), readFile(t, filepath.Join(local, ns, "worker", "app.log")))
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
