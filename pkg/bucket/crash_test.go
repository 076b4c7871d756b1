package bucket_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

var errCrash = errors.New("crashed")

// crashAfter makes every bucket operation fail from the n-th put on, as if the process died
// there: what it put before stays, nothing after happens. put, if set, is told each key put.
func crashAfter(m *objstore.Memory, n int, put func(key string)) {
	puts := 0
	m.Fail = func(op, key string) error {
		if op == "put" {
			puts++
		}
		if puts >= n {
			return errCrash
		}
		if op == "put" && put != nil {
			put(key)
		}
		return nil
	}
}

// adopted counts the segments a run put again under the key an interrupted run left: the
// sequences must get there, or the test proves nothing about it.
var adopted int

// TestCrashes exports one container again and again into a bucket, each run dying at a random
// put (between a segment and its checkpoint, between two segments, before a gap), while the
// container logs identical lines, bursts within a second and long lines, with segments of a
// few hundred bytes. After every run no two segments in the bucket hold the same bytes of the
// log, and the log the checkpoint covers is a prefix of the one a faultless export into a
// directory stores; after a last faultless run into the bucket, the two are equal.
func TestCrashes(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) { crashSequence(t, seed, false) })
	}
	if adopted == 0 {
		t.Error("no run put a segment again under the key an interrupted run left")
	}
}

// TestCrashesAcrossDays is TestCrashes with a clock that crosses midnight (UTC) between and
// within runs: segment keys begin with a day, and runs that commit at other sizes name the
// segments at the same offsets with other days; the next run must still find every segment
// past the checkpoint (they are listed after the checkpoint's last key).
func TestCrashesAcrossDays(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 6
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) { crashSequence(t, seed, true) })
	}
}

// crashSequence runs TestCrashes' sequence; with days, the log's lines cross midnight often.
func crashSequence(t *testing.T, seed int64, days bool) {
	rng := rand.New(rand.NewSource(seed))
	srv := logserver.New(t)
	srv.AddPod("default", "p0", "c")
	client := srv.Client()
	timestamps := rng.Intn(2) == 0
	opts := export.Options{Timestamps: timestamps, CommitBytes: int64(64 + rng.Intn(400))}
	local, err := store.Open(t.TempDir(), timestamps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Close() })
	mem := objstore.NewMemory()
	ctx := context.Background()
	now := time.Now().Add(-time.Hour)
	if days {
		now = time.Date(2024, 3, 9, 23, 59, 0, 0, time.UTC)
	}
	n := 0
	for step := 0; step < 25; step++ {
		var entries []logserver.Entry
		switch rng.Intn(4) {
		case 0: // identical lines within one second
			for range 1 + rng.Intn(6) {
				entries = append(entries, logserver.Entry{Time: now, Text: "same"})
			}
		case 1: // a long line, split by the runtime
			long := strings.Repeat(strconv.Itoa(step), 200+rng.Intn(600))
			for len(long) > 150 {
				entries = append(entries, logserver.Entry{Time: now, Partial: true, Text: long[:150]})
				long = long[150:]
			}
			entries = append(entries, logserver.Entry{Time: now, Text: long})
		default:
			for range 1 + rng.Intn(20) {
				n++
				entries = append(entries, logserver.Entry{Time: now, Text: fmt.Sprintf("line %d %s", n, strings.Repeat("x", rng.Intn(40)))})
				if rng.Intn(3) == 0 {
					now = now.Add(time.Duration(rng.Intn(1500)) * time.Millisecond)
				}
				if days && rng.Intn(4) == 0 {
					now = now.Add(time.Duration(rng.Intn(30)) * time.Hour)
				}
			}
		}
		srv.Append("default", "p0", "c", entries...)
		now = now.Add(time.Second)
		if days {
			now = now.Add(time.Duration(rng.Intn(30)) * time.Hour)
		}
		if rng.Intn(3) == 0 {
			continue
		}
		tgt := target.Of(srv.Pod("default", "p0"), "c")
		ref := &export.Exporter{Client: client, Dest: local, Options: opts}
		if res := ref.Export(ctx, tgt); res.Err != nil {
			t.Fatalf("step %d: export into the directory: %v", step, res.Err)
		}
		crash := 1 + rng.Intn(8)
		before := map[string]bool{}
		for _, k := range mem.Keys() {
			before[k] = true
		}
		crashAfter(mem, crash, func(key string) {
			if before[key] && strings.HasSuffix(key, ".log.gz") {
				adopted++
			}
		})
		// Segments end where the merge commits: runs that commit at other sizes (another
		// setting, or a follower's interval) meet what others left.
		bopts := opts
		if rng.Intn(2) == 0 {
			bopts.CommitBytes = int64(64 + rng.Intn(400))
		}
		runBucket(t, ctx, mem, client, bopts, tgt, timestamps)
		mem.Fail = nil
		want := readLocal(t, local)
		got := readBucket(t, mem, timestamps)
		if !strings.HasPrefix(want, got) {
			t.Fatalf("seed %d step %d (crash at put %d): the bucket's log is not a prefix of the directory's:\nbucket: %q\ndir:    %q", seed, step, crash, got, want)
		}
		checkDisjoint(t, mem)
	}
	tgt := target.Of(srv.Pod("default", "p0"), "c")
	ref := &export.Exporter{Client: client, Dest: local, Options: opts}
	if res := ref.Export(ctx, tgt); res.Err != nil {
		t.Fatal(res.Err)
	}
	runBucket(t, ctx, mem, client, opts, tgt, timestamps)
	if got, want := readBucket(t, mem, timestamps), readLocal(t, local); got != want {
		t.Fatalf("seed %d: after a faultless run the bucket's log differs from the directory's:\nbucket: %q\ndir:    %q", seed, got, want)
	}
	checkDisjoint(t, mem)
}

func runBucket(t *testing.T, ctx context.Context, mem *objstore.Memory, client kubernetes.Interface, opts export.Options, tgt target.Target, timestamps bool) {
	t.Helper()
	d, err := bucket.Open(ctx, mem, "logs", timestamps)
	if errors.Is(err, errCrash) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	e := &export.Exporter{Client: client, Dest: d, Options: opts}
	res := e.Export(ctx, tgt)
	if res.Err != nil && !errors.Is(res.Err, errCrash) {
		t.Fatalf("export into the bucket: %v", res.Err)
	}
}

func readLocal(t *testing.T, d *store.Dir) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.Path("default"), "p0", "c.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// readBucket concatenates the segments the checkpoint covers.
func readBucket(t *testing.T, mem *objstore.Memory, timestamps bool) string {
	t.Helper()
	d, err := bucket.Open(context.Background(), mem, "logs", timestamps)
	if err != nil {
		t.Fatal(err)
	}
	segs, _, err := d.Segments("default", "p0", "c")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, s := range segs {
		out.Write(gunzip(t, mem, s.Key))
	}
	return out.String()
}

func gunzip(t *testing.T, mem *objstore.Memory, key string) []byte {
	t.Helper()
	data, err := mem.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return b
}

// checkDisjoint fails if two segment objects in the bucket hold the same bytes of the log, or
// if one does not hold as many bytes as its key says.
func checkDisjoint(t *testing.T, mem *objstore.Memory) {
	t.Helper()
	type span struct {
		key        string
		start, end int64
	}
	var spans []span
	for _, k := range mem.Keys() {
		if !strings.HasSuffix(k, ".log.gz") {
			continue
		}
		name := strings.TrimSuffix(k[strings.LastIndexByte(k, '/')+1:], ".log.gz")
		a, b, _ := strings.Cut(name, "-")
		start, _ := strconv.ParseInt(a, 10, 64)
		end, _ := strconv.ParseInt(b, 10, 64)
		if got := int64(len(gunzip(t, mem, k))); got != end-start {
			t.Fatalf("%s holds %d bytes, its key says %d", k, got, end-start)
		}
		spans = append(spans, span{k, start, end})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			t.Fatalf("segments %s and %s hold the same bytes of the log", spans[i-1].key, spans[i].key)
		}
	}
}
