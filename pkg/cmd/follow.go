package cmd

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"k8s.io/client-go/kubernetes"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/follow"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// checkpointInterval bounds what a killed follower fetches again.
const checkpointInterval = 2 * time.Second

func (o *Options) runFollow(ctx context.Context, client kubernetes.Interface, scope podselect.Scope) (err error) {
	dir, err := o.openDir()
	if err != nil {
		return err
	}
	defer closeDir(dir, &err)
	opts := export.Options{Timestamps: o.Timestamps, Since: o.since, CommitInterval: checkpointInterval}
	once := &export.Exporter{Client: client, Dir: dir, Options: opts}
	opts.Follow = true
	streaming := &export.Exporter{Client: client, Dir: dir, Options: opts}
	var mu sync.Mutex
	f := &follow.Follower{
		Client: client, Scope: scope, Selector: o.selector,
		Export: func(ctx context.Context, t target.Target, follow bool) export.Result {
			if follow {
				return streaming.Export(ctx, t)
			}
			return once.Export(ctx, t)
		},
		Gone:       once.Gone,
		MaxStreams: o.MaxLogRequests, Resync: 10 * time.Minute, Reconnect: o.ReconnectInterval,
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
	stop := o.statusLine(ctx, f, &mu)
	results, nsErrs, err := f.Run(ctx)
	stop()
	if err != nil {
		return err
	}
	s := newSummary(results, nsErrs)
	if err := o.printSummary(s); err != nil {
		return err
	}
	return failures(s, len(results), nsErrs)
}

// statusLine reports the follower's state on stderr: a live line on a terminal, one line every
// --summary-interval otherwise.
func (o *Options) statusLine(ctx context.Context, f *follow.Follower, mu *sync.Mutex) func() {
	text := func(st follow.Stats, rate float64) string {
		return fmt.Sprintf("following %d containers (%d stopped and stored): %d streams open, %d waiting for a stream (--max-log-requests %d), %d lines (%d bytes) exported, %.0f lines/s",
			st.Containers, st.Stored, st.Open, st.Waiting, o.MaxLogRequests, st.Lines, st.Bytes, rate)
	}
	if isTerminal(o.ErrOut) && o.SummaryInterval == 0 {
		return liveStatus(o.ErrOut, f, text)
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
		var last follow.Stats
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			st := f.Stats()
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
func liveStatus(w io.Writer, f *follow.Follower, text func(follow.Stats, float64) string) func() {
	p := mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(time.Second), mpb.WithWidth(2))
	var last follow.Stats
	lastAt := time.Now()
	bar := p.New(1, mpb.SpinnerStyle(), mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
		st, now := f.Stats(), time.Now()
		rate := float64(st.Lines-last.Lines) / max(now.Sub(lastAt).Seconds(), 1e-3)
		last, lastAt = st, now
		return text(st, rate)
	})))
	return func() {
		bar.Abort(false)
		p.Wait()
	}
}
