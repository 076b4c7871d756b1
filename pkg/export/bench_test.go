package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// benchLog is a served log as the API serves it with timestamps=true (RFC3339 with nine
// fractional digits, lines 10 ms apart), of line lengths drawn from a fixed seed: mostly 40-300
// bytes of text, one line in a hundred 1-16 KiB (a stack trace, a JSON document), one in twenty
// thousand 100 KiB (longer than the read buffer, so it comes in fragments). It returns the log,
// its line count and a client of a server that serves it.
func benchLog(b *testing.B, size int) ([]byte, int64, kubernetes.Interface) {
	rng := rand.New(rand.NewPCG(1, 2))
	const text = "GET /api/v1/namespaces/default/pods?limit=500&resourceVersion=0 200 OK in 3ms from 10.0.0.1:52344 user-agent=kubectl/v1.36 request-id=4f0c1c2e-8b2a-4d6e-9a51-3e1f0f6f2a7b level=info msg=\"handled\" "
	var log bytes.Buffer
	var lines int64
	for i := 0; log.Len() < size; i++ {
		n := 40 + rng.IntN(260)
		switch {
		case i%20000 == 19999:
			n = 100 << 10
		case rng.IntN(100) == 0:
			n = 1<<10 + rng.IntN(15<<10)
		}
		log.WriteString(ts(i/100, i%100*10000000).Format("2006-01-02T15:04:05.000000000Z07:00"))
		log.WriteByte(' ')
		for n > 0 {
			c := min(n, len(text))
			log.WriteString(text[:c])
			n -= c
		}
		log.WriteByte('\n')
		lines++
	}
	served := log.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if servePod(w, r, func(string) string { return "u" }) {
			return
		}
		_, _ = w.Write(served)
	}))
	b.Cleanup(srv.Close)
	return served, lines, kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
}

// benchStatus is the status of every benchmark container.
var benchStatus = corev1.ContainerStatus{Name: "app", ContainerID: "containerd://1",
	State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(ts(-1000, 0))}}}

// servePod answers a request for a pod (not its log) with the benchmark's status, as an export
// asks for it to prove which instance served a first export.
func servePod(w http.ResponseWriter, r *http.Request, uid func(name string) string) bool {
	if strings.HasSuffix(r.URL.Path, "/log") {
		return false
	}
	name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid(name))},
		Status:     corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{benchStatus}}}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&pod)
	return true
}

// BenchmarkMerge compares the export of one served log into an empty directory (the per-line
// path: split, parse the timestamp, account the checkpoint window, write, commit) with reading the
// same response into io.Discard, the floor of what any client of the API pays. Both run in every
// iteration, alternating which goes first, so that a machine shared with other work slows both
// alike; x-discard is the export's throughput as a fraction of the floor's (1 would be free), and
// cpu-x-discard the same for the CPU time (user and system) of the process, server included,
// which other work on the machine disturbs less.
// allocs/line should round to 0: what allocates is per export (request, files), not per line.
//
// The log is MERGE_BENCH_MIB MiB (default 32); at 128 its export also saves checkpoints on the
// way (every CommitEvery), as a long one does.
func BenchmarkMerge(b *testing.B) {
	mib := 32
	if s := os.Getenv("MERGE_BENCH_MIB"); s != "" {
		var err error
		if mib, err = strconv.Atoi(s); err != nil || mib <= 0 {
			b.Fatalf("MERGE_BENCH_MIB=%q: want a number of MiB", s)
		}
	}
	served, lines, client := benchLog(b, mib<<20)
	st := &benchStatus
	discard := func() {
		rc, err := client.CoreV1().Pods("ns").GetLogs("p", &corev1.PodLogOptions{Container: "app", Timestamps: true}).Stream(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(len(served)) {
			b.Fatalf("%d bytes, %v", n, err)
		}
		rc.Close()
	}
	// Every iteration gets a directory of its own, removed at the end (see BenchmarkExportManySmall).
	scratch := b.TempDir()
	// plain is the default (stored lines without their timestamp), timestamps keeps it.
	for _, timestamps := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "timestamps"}[timestamps]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(served)))
			b.ReportAllocs()
			var mallocs uint64
			var floor, export, floorCPU, exportCPU time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir, err := os.MkdirTemp(scratch, "")
				if err != nil {
					b.Fatal(err)
				}
				d, err := store.Open(dir, timestamps)
				if err != nil {
					b.Fatal(err)
				}
				e := &Exporter{Client: client, Dest: d, Options: Options{Timestamps: timestamps}}
				if i%2 == 1 {
					start, cpu := time.Now(), cpuTime(b)
					discard()
					floor, floorCPU = floor+time.Since(start), floorCPU+cpuTime(b)-cpu
				}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				start, cpu := time.Now(), cpuTime(b)
				b.StartTimer()
				res := e.Export(context.Background(), target.Target{Namespace: "ns", Pod: "p", PodUID: "u", Container: "app", Status: st})
				b.StopTimer()
				export, exportCPU = export+time.Since(start), exportCPU+cpuTime(b)-cpu
				runtime.ReadMemStats(&after)
				mallocs += after.Mallocs - before.Mallocs
				if res.Err != nil || res.Lines != lines || timestamps && res.Bytes != int64(len(served)) {
					b.Fatalf("%d lines, %d bytes, %v", res.Lines, res.Bytes, res.Err)
				}
				if err := d.Close(); err != nil {
					b.Fatal(err)
				}
				if i%2 == 0 {
					start, cpu := time.Now(), cpuTime(b)
					discard()
					floor, floorCPU = floor+time.Since(start), floorCPU+cpuTime(b)-cpu
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(mallocs)/float64(b.N)/float64(lines), "allocs/line")
			b.ReportMetric(float64(floor)/float64(export), "x-discard")
			b.ReportMetric(float64(floorCPU)/float64(exportCPU), "cpu-x-discard")
		})
	}
}

// BenchmarkExportManySmall is workload (b) of the side-by-side benchmark without the cluster:
// many containers with small logs, where what counts is the cost per container (files, state,
// request), first a full export, then a resume after a few more lines.
func BenchmarkExportManySmall(b *testing.B) {
	const containers, lines = 200, 170 // ~20 KiB each
	var log bytes.Buffer
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&log, "%s GET /api/v1/items/%d 200 in 3ms from 10.0.0.1 user-agent=bench\n",
			ts(i/100, i%100*10000000).Format("2006-01-02T15:04:05.000000000Z07:00"), i)
	}
	full := log.Bytes()
	grown := append(append([]byte{}, full...), fmt.Sprintf("%s one more\n", ts(lines/100, 0).Format("2006-01-02T15:04:05.000000000Z07:00"))...)
	var served []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if servePod(w, r, func(name string) string { return "u" + strings.TrimPrefix(name, "pod-") }) {
			return
		}
		body := served
		if s := r.URL.Query().Get("sinceTime"); s != "" {
			since, err := time.Parse(time.RFC3339, s)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = fromSecond(body, since)
		}
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, QPS: -1})
	st := &benchStatus
	targets := make([]target.Target, containers)
	for i := range targets {
		targets[i] = target.Target{Namespace: "ns", Pod: fmt.Sprintf("pod-%d", i), PodUID: fmt.Sprintf("u%d", i), Container: "app", Status: st}
	}
	run := func(b *testing.B, d *store.Dir, want int64) {
		e := &Exporter{Client: client, Dest: d}
		for _, res := range e.ExportAll(context.Background(), targets, 10, nil) {
			if res.Err != nil || res.Lines != want {
				b.Fatalf("%s: %d lines, %v", res.File, res.Lines, res.Err)
			}
		}
	}
	// Every iteration gets a new directory, and none is removed before the end: on ext4 without a
	// journal (this project's CI machine), creating a file within about 30 s of deleting thousands
	// costs a millisecond of kernel time (it scans the recently deleted inodes), so removing each
	// iteration's files would charge the next iteration for the cleanup.
	scratch := b.TempDir()
	// full-nosync is the floor of full: the same export with every sync skipped, to compare
	// the cost of durability against in the same session.
	for _, v := range []struct {
		name        string
		incremental bool
		opts        []store.Option
	}{{"full", false, nil}, {"incremental", true, nil}, {"full-nosync", false, []store.Option{store.NoSync()}}} {
		incremental := v.incremental
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				served = full
				dir, err := os.MkdirTemp(scratch, "")
				if err != nil {
					b.Fatal(err)
				}
				d, err := store.Open(dir, false, v.opts...)
				if err != nil {
					b.Fatal(err)
				}
				want := int64(lines)
				if incremental {
					run(b, d, lines)
					served, want = grown, 1
				}
				b.StartTimer()
				run(b, d, want)
				b.StopTimer()
				d.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*containers), "µs/container")
		})
	}
}

// fromSecond is what the kubelet serves for sinceTime: the entries from that second on.
func fromSecond(log []byte, since time.Time) []byte {
	for off := 0; off < len(log); {
		end := bytes.IndexByte(log[off:], '\n') + off + 1
		ts, err := time.Parse(time.RFC3339Nano, string(log[off:bytes.IndexByte(log[off:], ' ')+off]))
		if err == nil && !ts.Before(since) {
			return log[off:]
		}
		off = end
	}
	return nil
}
