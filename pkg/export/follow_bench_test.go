package export

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// BenchmarkFollowStreams follows many containers that each log a line every 100 ms, over HTTP/2
// as from an API server, and reports the memory in use per followed stream once they are
// under way (heap and goroutine stacks, of the server's half of each stream too: it runs in the
// same process). A follower keeps one such stream per container; -memprofile shows what holds
// the memory.
func BenchmarkFollowStreams(b *testing.B) {
	const streams = 500
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if servePod(w, r, func(name string) string { return "u" + strings.TrimPrefix(name, "pod-") }) {
			return
		}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "%s GET /api/v1/items/%d 200 in 3ms from 10.0.0.1 user-agent=bench\n", time.Now().UTC().Format(time.RFC3339Nano), i)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	b.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, QPS: -1, TLSClientConfig: rest.TLSClientConfig{CAData: ca}})
	inUse := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	for i := 0; i < b.N; i++ {
		d, err := store.Open(b.TempDir(), false, store.NoSync())
		if err != nil {
			b.Fatal(err)
		}
		e := &Exporter{Client: client, Dest: d, Options: Options{Follow: true, CommitInterval: 2 * time.Second}}
		before := inUse()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for j := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.Export(ctx, target.Target{Namespace: "ns", Pod: fmt.Sprintf("pod-%d", j), PodUID: fmt.Sprintf("u%d", j), Container: "app", Status: &benchStatus})
			}()
		}
		time.Sleep(5 * time.Second)
		b.ReportMetric(float64(inUse()-before)/streams, "B/stream")
		cancel()
		wg.Wait()
		d.Close()
	}
}
