// Package peakmem samples a runtime/metrics value while a benchmark runs and keeps its peak: the
// heap's peak is what bounds a process's resident memory, and runtime.MemStats taken before and
// after an export says nothing of it.
package peakmem

import (
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Start samples the metric name (a uint64 one, such as "/gc/heap/live:bytes") every millisecond
// until stop is called, which returns the highest value seen.
func Start(name string) (stop func() uint64) {
	var peak atomic.Uint64
	done, finished := make(chan struct{}), make(chan struct{})
	sample := []metrics.Sample{{Name: name}}
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}
