package export

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// countMetrics is a Metrics that sums what it is told.
type countMetrics struct {
	mu                    sync.Mutex
	written, lines, bytes int64
	saves, failures       int
	newest                time.Time
}

func (c *countMetrics) Written(ts time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written++
	if ts.After(c.newest) {
		c.newest = ts
	}
}

func (c *countMetrics) Saved(_ string, lines, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.saves++
	c.lines += lines
	c.bytes += bytes
}

func (c *countMetrics) SaveFailed(string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures++
}

// What the metrics are told as stored is what the results count (what the checkpoints cover),
// also across a restart between the list and the log request; every stored line was written.
func TestMetricsCountWhatIsSaved(t *testing.T) {
	k, p, run := newFixture(t)
	m := &countMetrics{}
	o := Options{Metrics: m}
	k.add(0, 0, "a1", "a2")
	r1 := run(o)
	if r1.Err != nil || r1.Lines != 2 {
		t.Fatalf("first export: %+v", r1)
	}
	if m.lines != 2 || m.bytes != r1.Bytes || m.written != 2 || !m.newest.Equal(ts(0, 0)) {
		t.Fatalf("after the first export: %+v, result %d lines %d bytes", m, r1.Lines, r1.Bytes)
	}
	listed := p.status
	p.listed = &listed
	k.add(1, 0, "a3")
	p.restart(k)
	k.add(9, 0, "b1")
	r2 := run(o)
	if r2.Err != nil || r2.Lines != 2 {
		t.Fatalf("second export: %+v", r2)
	}
	if m.lines != r1.Lines+r2.Lines || m.bytes != r1.Bytes+r2.Bytes || m.failures != 0 {
		t.Fatalf("after the second export: %+v, results %d+%d lines, %d+%d bytes", m, r1.Lines, r2.Lines, r1.Bytes, r2.Bytes)
	}
	if m.written < m.lines {
		t.Fatalf("written %d < stored %d", m.written, m.lines)
	}
	assertLines(t, p.file, "a1", "a2", "a3", "b1")
}

// A checkpoint that cannot be saved is told, and nothing is counted as stored.
func TestMetricsSaveFailed(t *testing.T) {
	srv := logserver.New(t)
	srv.AddPod("default", "p0", "c")
	srv.Append("default", "p0", "c", logserver.Entry{Time: time.Now(), Text: "a-1"})
	dir := t.TempDir()
	m := &countMetrics{}
	e, d := breakExporter(t, srv, dir, Options{Metrics: m}, nil)
	defer d.Close()
	// The namespace's checkpoints are read (there are none); then their directory is replaced by
	// a file, so that saving one fails, for root too.
	if _, err := d.Checkpoint("default", "p0", "c"); err != nil {
		t.Fatal(err)
	}
	cps := filepath.Join(dir, ".logexport", "checkpoints")
	if err := os.RemoveAll(cps); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cps, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := e.Export(context.Background(), breakTarget(t, srv, "p0", "c"))
	if res.Err == nil {
		t.Fatalf("a checkpoint was saved into a file: %+v", res)
	}
	if m.failures != 1 || m.saves != 0 || m.lines != 0 || m.written != 1 {
		t.Fatalf("metrics %+v, want the line written, one failure and nothing stored", m)
	}
}

func assertLines(t *testing.T, file string, want ...string) {
	t.Helper()
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != lines(want) {
		t.Fatalf("%s holds %q, want %q", file, got, lines(want))
	}
}
