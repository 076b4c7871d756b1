package metrics

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// DefaultUnhealthyAfter is how long checkpoint saves may fail, with none succeeding, before the
// follower says it is unhealthy. Long enough for a full disk that an operator frees or a storage
// hiccup to pass without a restart; short enough that a follower that stores nothing is noticed
// (and restarted by its liveness probe, which also reopens the directory).
const DefaultUnhealthyAfter = 5 * time.Minute

// Health is what /healthz and /readyz say.
type Health struct {
	clock clock.PassiveClock
	// UnhealthyAfter is how long saves may fail before Healthy says so.
	unhealthyAfter time.Duration
	ready          atomic.Bool

	mu sync.Mutex
	// failingSince is the first failure since the last successful save, zero if none.
	failingSince time.Time
	lastErr      error
}

// NewHealth returns a Health that is not ready yet; c is clock.RealClock if nil, unhealthyAfter
// DefaultUnhealthyAfter if zero.
func NewHealth(c clock.PassiveClock, unhealthyAfter time.Duration) *Health {
	if c == nil {
		c = clock.RealClock{}
	}
	if unhealthyAfter <= 0 {
		unhealthyAfter = DefaultUnhealthyAfter
	}
	return &Health{clock: c, unhealthyAfter: unhealthyAfter}
}

// SetReady says whether the follower is ready: its informers synced and its first checkpoints
// loaded, and it is not shutting down.
func (h *Health) SetReady(ready bool) { h.ready.Store(ready) }

// Ready returns nil when ready, else why not.
func (h *Health) Ready() error {
	if !h.ready.Load() {
		return fmt.Errorf("not ready: the pods are not listed or the checkpoints not loaded yet, or shutting down")
	}
	return nil
}

// Healthy returns nil unless checkpoint saves have failed, none succeeding, for longer than the
// threshold. A follower with nothing to save is healthy.
func (h *Health) Healthy() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failingSince.IsZero() {
		return nil
	}
	if d := h.clock.Since(h.failingSince); d >= h.unhealthyAfter {
		return fmt.Errorf("no checkpoint could be saved for %s: %v", d.Round(time.Second), h.lastErr)
	}
	return nil
}

func (h *Health) saved(time.Time) {
	h.mu.Lock()
	h.failingSince, h.lastErr = time.Time{}, nil
	h.mu.Unlock()
}

func (h *Health) failed(at time.Time, err error) {
	h.mu.Lock()
	if h.failingSince.IsZero() {
		h.failingSince = at
	}
	h.lastErr = err
	h.mu.Unlock()
}
