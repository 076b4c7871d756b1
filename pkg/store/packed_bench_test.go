package store

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkCheckpointsHeap is what a namespace's checkpoints take in memory, per container, for
// 10,000 running containers with real-looking UIDs and container IDs (B/container: the map, its
// keys and the packed checkpoints, as a run holds them).
func BenchmarkCheckpointsHeap(b *testing.B) {
	const n = 10000
	at := time.Date(2026, 11, 30, 7, 1, 2, 123456789, time.UTC)
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var per float64
	for range b.N {
		keys := make([]containerKey, n)
		cps := make([]Checkpoint, n)
		for i := range n {
			// The names as a listing gives them: allocated apart, held only by the map after.
			keys[i] = containerKey{strings.Clone(fmt.Sprintf("web-7c9f5d8b4-%05d", i)), strings.Clone("app")}
			cps[i] = Checkpoint{PodUID: fmt.Sprintf("0f8e5c1a-3c1e-4f7e-9d2b-%012x", i), Instance: fmt.Sprintf("containerd://%064x", i),
				Since: at.Truncate(time.Second), Last: at.Add(3 * time.Second), Begin: at.Add(-26 * time.Hour), Hash: 1 << 60, First: 1 << 61,
				Ties: 1, Size: 20 << 10, Lines: 140}
		}
		m := cpMap{}
		for i := range n {
			m.put(keys[i], cps[i])
		}
		keys, cps = nil, nil
		held := live()
		runtime.KeepAlive(m)
		m = nil
		per = float64(held-live()) / n
	}
	b.ReportMetric(per, "B/container")
}
