package cmd

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/follow"
	"github.com/logexport/kubectl-logexport/pkg/metrics"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// checkpointInterval bounds what a killed follower fetches again.
const checkpointInterval = 2 * time.Second

func (o *Options) runFollow(ctx context.Context, client kubernetes.Interface) (err error) {
	var l net.Listener
	if o.MetricsBindAddress != "" {
		if l, err = metrics.Listen(o.MetricsBindAddress); err != nil {
			return err
		}
		// Closed by the server's shutdown once it serves.
		defer func() {
			if l != nil {
				_ = l.Close()
			}
		}()
	}
	dir, err := o.openRun(ctx, "follow")
	if err != nil {
		return err
	}
	defer closeDest(dir, &err)
	defer o.finishRun(dir, &err)
	stored := &storedCounter{}
	opts := o.exportOptions()
	opts.CommitInterval, opts.Metrics = checkpointInterval, stored
	if o.toBucket() {
		// Every checkpoint of a followed container in a bucket is an object of its lines.
		opts.CommitInterval = o.SegmentInterval
	}
	once := &export.Exporter{Client: client, Dest: dir, Options: opts}
	opts.Follow = true
	streaming := &export.Exporter{Client: client, Dest: dir, Options: opts}
	var mu sync.Mutex
	f := &follow.Follower{
		Client: client, Selections: o.selections,
		Export: func(ctx context.Context, t target.Target, follow bool) export.Result {
			if follow {
				return streaming.Export(ctx, t)
			}
			return once.Export(ctx, t)
		},
		Gone:       once.Gone,
		RecordGaps: once.RecordGaps,
		MaxStreams: o.followStreams(), Resync: 10 * time.Minute, Reconnect: o.ReconnectInterval,
		Report: func(r export.Result) {
			mu.Lock()
			defer mu.Unlock()
			for _, g := range r.Gaps {
				fmt.Fprintf(o.ErrOut, "warning: %s/%s/%s: %s\n", r.Namespace, r.Pod, r.Container, g)
			}
		},
		NamespaceError: func(e podselect.NamespaceError) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(o.ErrOut, "warning: not following namespace %s: %v\n", e.Namespace, e.Err)
		},
	}
	if l != nil {
		shutdown, serr := o.serveMetrics(ctx, l, dir, f, stored)
		if serr != nil {
			return serr
		}
		l = nil
		defer shutdown(&err)
	}
	stop := o.statusLine(ctx, f, stored, &mu)
	results, nsErrs, err := f.Run(ctx)
	stop()
	if err != nil {
		return err
	}
	s := newSummary(results, nsErrs)
	o.ranSummary(s)
	if err := o.printSummary(s, nil); err != nil {
		return err
	}
	if err := shardLost(ctx); err != nil {
		return err
	}
	return failures(s, len(results), nsErrs)
}

// validateMetricsAddress checks --metrics-bind-address before anything starts: a one-shot run
// ends before a scrape could see it, and a typo should not surface only once the pods are listed.
func validateMetricsAddress(addr string, follow bool) error {
	if addr == "" {
		return nil
	}
	if !follow {
		return fmt.Errorf("--metrics-bind-address needs --follow: a one-shot run is over before it could be scraped")
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("invalid --metrics-bind-address %q: use host:port or :port, like :8080", addr)
	}
	return nil
}

// metricsShutdownTimeout bounds how long a scrape under way may hold up the exit.
const metricsShutdownTimeout = 5 * time.Second

// storedCounter counts what the saved checkpoints cover, those of streams still open included,
// for the status line, and hands every event on to the metrics, if they are served.
type storedCounter struct {
	lines, bytes atomic.Int64
	next         export.Metrics
}

func (c *storedCounter) Written(ts time.Time) {
	if c.next != nil {
		c.next.Written(ts)
	}
}

func (c *storedCounter) Saved(namespace string, lines, bytes int64) {
	c.lines.Add(lines)
	c.bytes.Add(bytes)
	if c.next != nil {
		c.next.Saved(namespace, lines, bytes)
	}
}

func (c *storedCounter) SaveFailed(namespace string, err error) {
	if c.next != nil {
		c.next.SaveFailed(namespace, err)
	}
}

// serveMetrics serves the follower's metrics and probes on l (--metrics-bind-address), from a
// registry of the run's own (a library's collectors on the global one are not mixed in). The
// returned function stops the server, once the follower is done, and makes its error the run's
// if the run had none.
func (o *Options) serveMetrics(ctx context.Context, l net.Listener, dir store.Destination, f *follow.Follower, stored *storedCounter) (func(*error), error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	health := metrics.NewHealth(nil, 0)
	m, err := metrics.New(reg, f.Stats, health)
	if err != nil {
		return nil, err
	}
	f.Metrics = m
	stored.next = m
	// Ready once every container selected at the start has its checkpoint read: what a restarted
	// follower resumes from is known. A checkpoint that cannot be read is its container's failure,
	// reported by its export, not the follower's.
	f.Synced = func(targets []target.Target) {
		for _, t := range targets {
			if _, err := dir.Checkpoint(t.Namespace, t.Pod, t.Container); err != nil {
				klog.V(1).InfoS("checkpoint not readable", "container", t.Key(), "err", err)
			}
		}
		if ctx.Err() == nil {
			health.SetReady(true)
			klog.V(1).InfoS("ready", "containers", len(targets))
		}
	}
	context.AfterFunc(ctx, func() { health.SetReady(false) })
	srv := metrics.Serve(l, metrics.Handler(reg, health))
	return func(runErr *error) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metricsShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && *runErr == nil {
			*runErr = err
		}
	}, nil
}

// status is what the status line says.
type status struct {
	follow.Stats
	// Lines and Bytes are stored (their checkpoints saved), by streams still open too.
	Lines, Bytes int64
}

// statusLine reports the follower's state on stderr: a live line on a terminal, one line every
// --summary-interval otherwise.
func (o *Options) statusLine(ctx context.Context, f *follow.Follower, stored *storedCounter, mu *sync.Mutex) func() {
	bound := "a stream per container"
	if n := o.followStreams(); n > 0 {
		bound = fmt.Sprintf("--max-log-requests %d", n)
	}
	shardPrefix := ""
	if o.shard.Enabled() {
		shardPrefix = o.shard.String() + ": "
	}
	now := func() status {
		return status{Stats: f.Stats(), Lines: stored.lines.Load(), Bytes: stored.bytes.Load()}
	}
	text := func(st status, rate float64) string {
		return fmt.Sprintf("%sfollowing %d containers (%d stopped and stored): %d streams open, %d waiting for a stream (%s), %d lines (%d bytes) exported, %.0f lines/s",
			shardPrefix, st.Containers, st.Stored, st.Open, st.Waiting, bound, st.Lines, st.Bytes, rate)
	}
	if isTerminal(o.ErrOut) && o.SummaryInterval == 0 {
		return liveStatus(o.ErrOut, now, text)
	}
	if o.SummaryInterval == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(o.SummaryInterval)
		defer t.Stop()
		var last status
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			st := now()
			rate := float64(st.Lines-last.Lines) / o.SummaryInterval.Seconds()
			last = st
			mu.Lock()
			fmt.Fprintln(o.ErrOut, text(st, rate))
			mu.Unlock()
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// liveStatus keeps a spinner with the follower's numbers on a terminal.
func liveStatus(w io.Writer, numbers func() status, text func(status, float64) string) func() {
	p := mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(time.Second), mpb.WithWidth(2))
	var last status
	lastAt := time.Now()
	bar := p.New(1, mpb.SpinnerStyle(), mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
		st, now := numbers(), time.Now()
		rate := float64(st.Lines-last.Lines) / max(now.Sub(lastAt).Seconds(), 1e-3)
		last, lastAt = st, now
		return text(st, rate)
	})))
	return func() {
		bar.Abort(false)
		p.Wait()
	}
}
