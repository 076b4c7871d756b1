package bucket

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"math/rand"
	"testing"
	"time"
)

// logLines are n bytes of JSON log lines, as a web service prints them: timestamps, levels,
// paths, statuses, latencies and trace IDs, seeded, so that they compress about as real logs do
// (to a fifth), not as the benchmark's generated lines (to a thirtieth).
func logLines(n int) []byte {
	r := rand.New(rand.NewSource(1))
	paths := []string{"/api/v1/orders", "/api/v1/users/%d", "/healthz", "/api/v2/search?q=%x", "/static/app.%x.js"}
	msgs := []string{"request completed", "cache miss", "upstream timeout, retrying", "user authenticated", "db query slow"}
	t := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	var b []byte
	for len(b) < n {
		t = t.Add(time.Duration(r.Intn(20)) * time.Millisecond)
		path := fmt.Sprintf(paths[r.Intn(len(paths))], r.Int63n(1<<40))
		b = fmt.Appendf(b, `{"ts":%q,"level":%q,"msg":%q,"method":"GET","path":%q,"status":%d,"latency_ms":%.3f,"trace_id":"%016x%016x","bytes":%d}`+"\n",
			t.Format(time.RFC3339Nano), []string{"info", "info", "info", "warn", "error"}[r.Intn(5)], msgs[r.Intn(len(msgs))], path,
			[]int{200, 200, 200, 201, 404, 500}[r.Intn(6)], r.Float64()*300, r.Uint64(), r.Uint64(), r.Intn(100000))
	}
	return b[:n]
}

// A segment is a gzip stream any reader takes (here the standard library's), and the same
// bytes give the same object: a segment put again after a crash is the same object.
func TestGzipBytes(t *testing.T) {
	for _, n := range []int{0, 1, 100 << 10, 3 << 20} {
		data := logLines(n)
		z, err := gzipBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		again, err := gzipBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(z, again) {
			t.Errorf("%d bytes: compressed twice, two different objects", n)
		}
		zr, err := stdgzip.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back %d bytes (%v), not what was compressed", n, len(got), err)
		}
		if zr.Name != "" || !zr.ModTime.IsZero() {
			t.Errorf("%d bytes: header has name %q, time %v", n, zr.Name, zr.ModTime)
		}
	}
}

// BenchmarkGzipBytes compresses a segment (SegmentBytes, the size the merge commits at) of JSON
// log lines; "stdlib" is compress/gzip at its default level, the reference. The ratio metric is
// compressed over plain bytes.
//
//	go test -run x -bench GzipBytes ./pkg/bucket/
func BenchmarkGzipBytes(b *testing.B) {
	data := logLines(SegmentBytes)
	report := func(b *testing.B, z []byte) {
		b.ReportMetric(float64(len(z))/float64(len(data)), "ratio")
	}
	b.Run("gzipBytes", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var z []byte
		for b.Loop() {
			var err error
			if z, err = gzipBytes(data); err != nil {
				b.Fatal(err)
			}
		}
		report(b, z)
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var out bytes.Buffer
		for b.Loop() {
			out.Reset()
			zw := stdgzip.NewWriter(&out)
			if _, err := zw.Write(data); err != nil {
				b.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				b.Fatal(err)
			}
		}
		report(b, out.Bytes())
	})
}
