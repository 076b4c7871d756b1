// Package metrics serves what a follower does, for Prometheus and for the kubelet's probes:
// collectors registered on a registry of the caller's, fed through the export and follow
// packages' Metrics interfaces, and /healthz and /readyz.
//
// Labels are kept to the namespace, never the pod or container: pods come and go by the
// thousand, and a series per pod would grow without bound.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/logexport/kubectl-logexport/pkg/follow"
)

// LagBuckets are the bounds, in seconds, of the lag histogram: a follower keeping up stores a
// line within a second or two of its timestamp; catching up after a restart, minutes to hours.
var LagBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600}

// Metrics are the collectors of one follower. They implement export.Metrics and follow.Metrics.
type Metrics struct {
	clock        clock.PassiveClock
	health       *Health
	lines        *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	gaps         *prometheus.CounterVec
	reconnects   *prometheus.CounterVec
	saveFailures *prometheus.CounterVec
	lastSave     prometheus.Gauge
	lag          prometheus.Histogram
}

// New registers the collectors on reg. stats, if set, is read at each scrape for the numbers of
// streams and containers; h, if set, is told of checkpoint saves and failures.
func New(reg prometheus.Registerer, stats func() follow.Stats, h *Health) (*Metrics, error) {
	ns := []string{"namespace"}
	m := &Metrics{
		clock:  clock.RealClock{},
		health: h,
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logexport_stored_lines_total",
			Help: "Lines stored, counted when the checkpoint that covers them is saved."}, ns),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logexport_stored_bytes_total",
			Help: "Bytes stored, counted when the checkpoint that covers them is saved."}, ns),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logexport_gaps_total",
			Help: "Gaps reported: stretches of a log that could not be exported."}, ns),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logexport_stream_reconnects_total",
			Help: "Log streams that broke and are opened again."}, ns),
		saveFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "logexport_checkpoint_save_failures_total",
			Help: "Checkpoints that could not be saved (a full disk, an I/O error)."}, ns),
		lastSave: prometheus.NewGauge(prometheus.GaugeOpts{Name: "logexport_last_checkpoint_save_timestamp_seconds",
			Help: "When a checkpoint was last saved, in seconds since the epoch (0: none yet)."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "logexport_line_lag_seconds",
			Help:    "Time from a line's timestamp to its being written to its file.",
			Buckets: LagBuckets}),
	}
	cs := []prometheus.Collector{m.lines, m.bytes, m.gaps, m.reconnects, m.saveFailures, m.lastSave, m.lag}
	if stats != nil {
		cs = append(cs, statsCollector(stats))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Written observes a line's lag. It is called once per line stored: one clock read and one
// histogram observation (atomic adds), no allocation, no lock.
func (m *Metrics) Written(ts time.Time) {
	// A node clock ahead of ours is no negative lag.
	m.lag.Observe(max(m.clock.Since(ts).Seconds(), 0))
}

// Saved counts what a saved checkpoint added.
func (m *Metrics) Saved(namespace string, lines, bytes int64) {
	if lines > 0 {
		m.lines.WithLabelValues(namespace).Add(float64(lines))
		m.bytes.WithLabelValues(namespace).Add(float64(bytes))
	}
	now := m.clock.Now()
	m.lastSave.Set(float64(now.UnixNano()) / 1e9)
	if m.health != nil {
		m.health.saved(now)
	}
}

// SaveFailed counts a checkpoint that could not be saved.
func (m *Metrics) SaveFailed(namespace string, err error) {
	m.saveFailures.WithLabelValues(namespace).Inc()
	if m.health != nil {
		m.health.failed(m.clock.Now(), err)
	}
}

// Reconnect counts a broken stream opened again.
func (m *Metrics) Reconnect(namespace string) {
	m.reconnects.WithLabelValues(namespace).Inc()
}

// Gaps counts reported gaps.
func (m *Metrics) Gaps(namespace string, n int) {
	m.gaps.WithLabelValues(namespace).Add(float64(n))
}

var (
	descOpen       = prometheus.NewDesc("logexport_streams_open", "Log streams open now.", nil, nil)
	descWaiting    = prometheus.NewDesc("logexport_streams_waiting", "Containers waiting for a free stream (--max-log-requests).", nil, nil)
	descContainers = prometheus.NewDesc("logexport_containers_followed", "Containers followed now.", nil, nil)
	descStopped    = prometheus.NewDesc("logexport_containers_stopped_stored", "Followed containers that have stopped and whose log is stored to its end.", nil, nil)
)

// statsCollector reads the follower's numbers once per scrape, so that following costs nothing
// for them between scrapes.
type statsCollector func() follow.Stats

func (statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOpen
	ch <- descWaiting
	ch <- descContainers
	ch <- descStopped
}

func (s statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := s()
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(st.Waiting))
	ch <- prometheus.MustNewConstMetric(descContainers, prometheus.GaugeValue, float64(st.Containers))
	ch <- prometheus.MustNewConstMetric(descStopped, prometheus.GaugeValue, float64(st.Stored))
}
