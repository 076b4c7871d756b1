package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
	"k8s.io/client-go/kubernetes"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/follow"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// checkpointInterval bounds what a killed follower fetches again.
const checkpointInterval = 2 * time.Second

func (o *Options) runFollow(ctx context.Context, client kubernetes.Interface, scope podselect.Scope) error {
	dir, err := store.Open(o.Dir, o.Timestamps)
	if err != nil {
		return err
	}
	defer dir.Close()
	e := &export.Exporter{Client: client, Dir: dir, Options: export.Options{
		Timestamps: o.Timestamps, Since: o.since, Follow: true, CommitInterval: checkpointInterval,
	}}
	var mu sync.Mutex
	f := &follow.Follower{
		Client: client, Exporter: e, Scope: scope, Selector: o.selector,
		MaxStreams: o.MaxLogRequests, Resync: 10 * time.Minute,
		Report: func(r export.Result) {
			mu.Lock()
			defer mu.Unlock()
			for _, g := range r.Gaps {
				fmt.Fprintf(o.ErrOut, "warning: %s/%s/%s: %s\n", r.Namespace, r.Pod, r.Container, g)
			}
		},
	}
	stop := o.statusLine(ctx, f, &mu)
	results, err := f.Run(ctx)
	stop()
	if err != nil {
		return fmt.Errorf("following pods: %w", err)
	}
	s := newSummary(results, nil)
	if err := o.printSummary(s); err != nil {
		return err
	}
	return failures(s, len(results), nil)
}

// statusLine reports the follower's state on stderr: every second on a terminal, every
// --summary-interval otherwise.
func (o *Options) statusLine(ctx context.Context, f *follow.Follower, mu *sync.Mutex) func() {
	interval, tty := o.SummaryInterval, isTerminal(o.ErrOut)
	if tty && interval == 0 {
		interval = time.Second
	}
	if interval == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
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
			rate := float64(st.Lines-last.Lines) / interval.Seconds()
			last = st
			line := fmt.Sprintf("following %d containers: %d streams open, %d waiting for a stream (--max-log-requests %d), %d lines (%d bytes) exported, %.0f lines/s",
				st.Containers, st.Open, st.Waiting, o.MaxLogRequests, st.Lines, st.Bytes, rate)
			mu.Lock()
			if tty {
				// Clear the line and rewrite it in place.
				fmt.Fprintf(o.ErrOut, "\r\x1b[K%s", line)
			} else {
				fmt.Fprintln(o.ErrOut, line)
			}
			mu.Unlock()
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if tty {
			fmt.Fprintln(o.ErrOut)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
