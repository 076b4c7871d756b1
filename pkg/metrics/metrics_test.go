package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/follow"
)

// Metrics is what the export and the follower are given.
var (
	_ export.Metrics = (*Metrics)(nil)
	_ follow.Metrics = (*Metrics)(nil)
)

var t0 = time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)

func newTest(t *testing.T, stats func() follow.Stats) (*Metrics, *prometheus.Registry, *testingclock.FakeClock, *Health) {
	t.Helper()
	clk := testingclock.NewFakeClock(t0)
	h := NewHealth(clk, time.Minute)
	reg := prometheus.NewRegistry()
	m, err := New(reg, stats, h)
	if err != nil {
		t.Fatal(err)
	}
	m.clock = clk
	return m, reg, clk, h
}

func TestCounters(t *testing.T) {
	m, reg, clk, _ := newTest(t, nil)
	m.Saved("a", 3, 30)
	m.Saved("a", 2, 20)
	m.Saved("b", 1, 7)
	m.Saved("b", 0, 0) // a checkpoint that moved only the window
	clk.Step(time.Second)
	m.SaveFailed("b", errors.New("no space left on device"))
	m.Reconnect("a")
	m.Gaps("b", 2)
	m.Gaps("b", 1)
	want := `
# HELP logexport_stored_lines_total Lines stored, counted when the checkpoint that covers them is saved.
# TYPE logexport_stored_lines_total counter
logexport_stored_lines_total{namespace="a"} 5
logexport_stored_lines_total{namespace="b"} 1
# HELP logexport_stored_bytes_total Bytes stored, counted when the checkpoint that covers them is saved.
# TYPE logexport_stored_bytes_total counter
logexport_stored_bytes_total{namespace="a"} 50
logexport_stored_bytes_total{namespace="b"} 7
# HELP logexport_checkpoint_save_failures_total Checkpoints that could not be saved (a full disk, an I/O error).
# TYPE logexport_checkpoint_save_failures_total counter
logexport_checkpoint_save_failures_total{namespace="b"} 1
# HELP logexport_stream_reconnects_total Log streams that broke and are opened again.
# TYPE logexport_stream_reconnects_total counter
logexport_stream_reconnects_total{namespace="a"} 1
# HELP logexport_gaps_total Gaps reported: stretches of a log that could not be exported.
# TYPE logexport_gaps_total counter
logexport_gaps_total{namespace="b"} 3
# HELP logexport_last_checkpoint_save_timestamp_seconds When a checkpoint was last saved, in seconds since the epoch (0: none yet).
# TYPE logexport_last_checkpoint_save_timestamp_seconds gauge
logexport_last_checkpoint_save_timestamp_seconds 1.7041032e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"logexport_stored_lines_total", "logexport_stored_bytes_total", "logexport_checkpoint_save_failures_total",
		"logexport_stream_reconnects_total", "logexport_gaps_total", "logexport_last_checkpoint_save_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestLag(t *testing.T) {
	m, reg, _, _ := newTest(t, nil)
	for _, ts := range []time.Time{
		t0,                              // 0 s
		t0.Add(-300 * time.Millisecond), // 0.3 s
		t0.Add(-3 * time.Second),        // 3 s
		t0.Add(-2 * time.Hour),          // catching up
		t0.Add(time.Second),             // a node clock ahead of ours: 0, not negative
	} {
		m.Written(ts)
	}
	want := `
# HELP logexport_line_lag_seconds Time from a line's timestamp to its being written to its file.
# TYPE logexport_line_lag_seconds histogram
logexport_line_lag_seconds_bucket{le="0.1"} 2
logexport_line_lag_seconds_bucket{le="0.25"} 2
logexport_line_lag_seconds_bucket{le="0.5"} 3
logexport_line_lag_seconds_bucket{le="1"} 3
logexport_line_lag_seconds_bucket{le="2.5"} 3
logexport_line_lag_seconds_bucket{le="5"} 4
logexport_line_lag_seconds_bucket{le="10"} 4
logexport_line_lag_seconds_bucket{le="30"} 4
logexport_line_lag_seconds_bucket{le="60"} 4
logexport_line_lag_seconds_bucket{le="300"} 4
logexport_line_lag_seconds_bucket{le="1800"} 4
logexport_line_lag_seconds_bucket{le="3600"} 4
logexport_line_lag_seconds_bucket{le="21600"} 5
logexport_line_lag_seconds_bucket{le="+Inf"} 5
logexport_line_lag_seconds_sum 7203.3
logexport_line_lag_seconds_count 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "logexport_line_lag_seconds"); err != nil {
		t.Fatal(err)
	}
}

// Written runs once per stored line: it must not allocate.
func TestWrittenDoesNotAllocate(t *testing.T) {
	m, err := New(prometheus.NewRegistry(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Through the interface, as the export calls it.
	var em export.Metrics = m
	ts := time.Now()
	if n := testing.AllocsPerRun(1000, func() { em.Written(ts) }); n != 0 {
		t.Fatalf("Written allocates %v times per line", n)
	}
}

func TestStats(t *testing.T) {
	st := follow.Stats{Containers: 7, Stored: 2, Open: 4, Waiting: 1}
	_, reg, _, _ := newTest(t, func() follow.Stats { return st })
	want := `
# HELP logexport_containers_followed Containers followed now.
# TYPE logexport_containers_followed gauge
logexport_containers_followed 7
# HELP logexport_containers_stopped_stored Followed containers that have stopped and whose log is stored to its end.
# TYPE logexport_containers_stopped_stored gauge
logexport_containers_stopped_stored 2
# HELP logexport_streams_open Log streams open now.
# TYPE logexport_streams_open gauge
logexport_streams_open 4
# HELP logexport_streams_waiting Containers waiting for a free stream (--max-log-requests).
# TYPE logexport_streams_waiting gauge
logexport_streams_waiting 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err == nil {
		t.Fatal("the other collectors are missing from the comparison, yet it passed")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "logexport_containers_followed",
		"logexport_containers_stopped_stored", "logexport_streams_open", "logexport_streams_waiting"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 4+2 {
		// The four, the last save's time and the lag histogram: vectors show no series before
		// their first label value.
		t.Fatalf("series %d (%v), want 6", n, err)
	}
}

// A second follower (a test, a library user) registers on a registry of its own; the same
// registry twice is refused rather than mixing two followers' numbers.
func TestOwnRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, nil, nil); err == nil {
		t.Fatal("registered twice on one registry")
	}
	if _, err := New(prometheus.NewRegistry(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := testutil.GatherAndCount(prometheus.DefaultGatherer, "logexport_line_lag_seconds"); n != 0 {
		t.Fatal("collectors ended up on the default registry")
	}
}

func TestHealth(t *testing.T) {
	errFull := errors.New("no space left on device")
	type ev struct {
		after time.Duration // clock step before it
		ok    bool          // saved, or failed
	}
	for _, tc := range []struct {
		name    string
		events  []ev
		wait    time.Duration // after the events
		healthy bool
	}{
		{name: "nothing saved yet", wait: time.Hour, healthy: true},
		{name: "saves succeed", events: []ev{{0, true}, {time.Hour, true}}, wait: time.Hour, healthy: true},
		{name: "failing for less than the threshold", events: []ev{{0, false}, {30 * time.Second, false}}, wait: 29 * time.Second, healthy: true},
		{name: "failing for the threshold", events: []ev{{0, false}, {30 * time.Second, false}}, wait: 30 * time.Second, healthy: false},
		{name: "failing once, then quiet", events: []ev{{0, false}}, wait: 2 * time.Minute, healthy: false},
		{name: "a save recovers", events: []ev{{0, false}, {2 * time.Minute, true}}, wait: time.Hour, healthy: true},
		{name: "the threshold counts from the first failure after a save", events: []ev{{0, false}, {50 * time.Second, true}, {time.Second, false}}, wait: 50 * time.Second, healthy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, clk, h := newTest(t, nil)
			for _, e := range tc.events {
				clk.Step(e.after)
				if e.ok {
					m.Saved("ns", 1, 1)
				} else {
					m.SaveFailed("ns", errFull)
				}
			}
			clk.Step(tc.wait)
			err := h.Healthy()
			if (err == nil) != tc.healthy {
				t.Fatalf("Healthy() = %v, want healthy %v", err, tc.healthy)
			}
			if err != nil && !strings.Contains(err.Error(), errFull.Error()) {
				t.Fatalf("Healthy() = %v, want the last error in it", err)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	m, reg, clk, h := newTest(t, nil)
	srv := httptest.NewServer(Handler(reg, h))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	steps := []struct {
		name        string
		do          func()
		ready, live int
	}{
		{"starting", func() {}, 503, 200},
		{"synced", func() { h.SetReady(true) }, 200, 200},
		{"saves failing briefly", func() { m.SaveFailed("ns", errors.New("EIO")) }, 200, 200},
		{"saves failing for long", func() { clk.Step(time.Minute) }, 200, 503},
		{"a save again", func() { m.Saved("ns", 1, 2) }, 200, 200},
		{"shutting down", func() { h.SetReady(false) }, 503, 200},
	}
	for _, s := range steps {
		s.do()
		if code, body := get("/readyz"); code != s.ready || (code == 200) != (body == "ok") {
			t.Errorf("%s: /readyz %d %q, want %d", s.name, code, body, s.ready)
		}
		if code, body := get("/healthz"); code != s.live || (code == 200) != (body == "ok") {
			t.Errorf("%s: /healthz %d %q, want %d", s.name, code, body, s.live)
		}
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, `logexport_stored_lines_total{namespace="ns"} 1`) {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	if code, _ := get("/other"); code != 404 {
		t.Fatalf("/other %d, want 404", code)
	}
}
