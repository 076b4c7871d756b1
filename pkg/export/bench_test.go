package export

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/logexport/kubectl-logexport/pkg/store"
)

// benchLog is a served log of many ordinary lines, and a client of a server that serves it.
func benchLog(b *testing.B, lines int) ([]byte, kubernetes.Interface) {
	var log bytes.Buffer
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&log, "%s GET /api/v1/items/%d 200 in 3ms from 10.0.0.1 user-agent=bench\n",
			ts(i/1000, i%1000).Format("2006-01-02T15:04:05.000000000Z07:00"), i)
	}
	served := log.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(served) }))
	b.Cleanup(srv.Close)
	return served, kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
}

// BenchmarkRawStream is the floor for BenchmarkExportLines: the same log request, the body
// discarded.
func BenchmarkRawStream(b *testing.B) {
	served, client := benchLog(b, 200000)
	b.SetBytes(int64(len(served)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rc, err := client.CoreV1().Pods("ns").GetLogs("p", &corev1.PodLogOptions{Container: "app", Timestamps: true}).Stream(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(len(served)) {
			b.Fatalf("%d bytes, %v", n, err)
		}
		rc.Close()
	}
}

// BenchmarkExportLines exports a served log of many ordinary lines into an empty directory: the
// per-line path (split, parse the timestamp, account the checkpoint window, write). allocs/line
// should be ~0: what allocates is per export (request, files), not per line.
func BenchmarkExportLines(b *testing.B) {
	const lines = 200000
	served, client := benchLog(b, lines)
	st := &corev1.ContainerStatus{Name: "app", ContainerID: "containerd://1",
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}
	b.SetBytes(int64(len(served)))
	b.ReportAllocs()
	var mallocs uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d, err := store.Open(b.TempDir(), false)
		if err != nil {
			b.Fatal(err)
		}
		e := &Exporter{Client: client, Dir: d}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		res := e.Export(context.Background(), Target{Namespace: "ns", Pod: "p", PodUID: "u", Container: "app", Status: st})
		b.StopTimer()
		runtime.ReadMemStats(&after)
		mallocs += after.Mallocs - before.Mallocs
		if res.Err != nil || res.Lines != lines {
			b.Fatalf("%d lines, %v", res.Lines, res.Err)
		}
		d.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(mallocs)/float64(b.N)/lines, "allocs/line")
}
