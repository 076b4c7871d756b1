package cmd

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/logexport/kubectl-logexport/test/logserver"
	"github.com/logexport/kubectl-logexport/test/peakmem"
)

// BenchmarkRunHeap is workload (e) of the side-by-side benchmark without the cluster: a full
// export of pods of one container each, through the command (pods listed in pages, exported,
// the summary written as JSON), of 2,000 and of 10,000 pods. It reports the run's peak live heap
// above the live heap before it (peak-live-MiB) and that per pod (peak-live-B/pod). Live, not
// all the heap: the in-process server holds every pod, and the garbage the runtime lets build up
// on top of that would hide the run's own. The server's requests are in it too (it keeps a count
// of requests per container): compare two builds' figures, or the growth from 2,000 to 10,000
// pods, as ratios, not the figures with test/bench's peak RSS.
func BenchmarkRunHeap(b *testing.B) {
	for _, pods := range []int{2000, 10000} {
		b.Run(fmt.Sprint(pods), func(b *testing.B) {
			srv := logserver.New(b)
			kc := srv.Kubeconfig()
			now := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
			for i := range pods {
				name := fmt.Sprintf("pod-%05d", i)
				srv.AddPod("default", name, "app")
				var entries []logserver.Entry
				for j := range 5 {
					entries = append(entries, logserver.Entry{Time: now.Add(time.Duration(j) * time.Millisecond), Text: fmt.Sprintf("%s line %d", name, j)})
				}
				srv.Append("default", name, "app", entries...)
			}
			var peak uint64
			for range b.N {
				dir := b.TempDir()
				c := NewCmd(genericiooptions.IOStreams{In: nil, Out: io.Discard, ErrOut: io.Discard})
				c.SetArgs([]string{"--kubeconfig", kc, "-n", "default", "-d", dir, "-o", "json"})
				runtime.GC()
				before := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
				metrics.Read(before)
				// The live heap as the last collection found it: the heap the runtime lets grow before
				// the next is a multiple of it (GOGC), and so is the resident memory.
				stop := peakmem.Start("/gc/heap/live:bytes")
				// The server's pods make the heap large: at the default GOGC the run would see one or two
				// collections, and its live heap would be sampled only there. Collecting at 5% growth
				// samples it every few hundred KiB.
				gc := debug.SetGCPercent(5)
				err := c.ExecuteContext(context.Background())
				debug.SetGCPercent(gc)
				p := stop()
				if err != nil {
					b.Fatal(err)
				}
				if b := before[0].Value.Uint64(); p > b {
					peak = max(peak, p-b)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-live-MiB")
			b.ReportMetric(float64(peak)/float64(pods), "peak-live-B/pod")
		})
	}
}
