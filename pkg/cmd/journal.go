package cmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"time"

	"k8s.io/klog/v2"

	"github.com/logexport/kubectl-logexport/pkg/store"
)

// journal is a run's record in the directory's run journal: started once the run holds the
// directory, ended (finishRun) with the run's totals and exit code before the directory is
// closed.
type journal struct {
	run store.Run
	// totals are the run's, once it has a summary.
	totals *store.Totals
}

// newRunID returns an ID that sorts by the run's start and is unique among runs.
func newRunID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// startRun appends the run's start to the journal: a run killed before its end leaves it.
func (o *Options) startRun(dir destination, mode string) error {
	now := o.now().UTC()
	r := store.Run{ID: newRunID(now), Mode: mode, Start: now, Who: o.who(), Config: o.ConfigFile}
	if o.shard.Enabled() {
		r.Shard = fmt.Sprintf("%d/%d", o.shard.Index, o.shard.Total)
	}
	for _, s := range o.selections {
		sel := store.Selection{LabelSelector: s.Scope.LabelSelector, FieldSelector: s.Scope.FieldSelector,
			Pods: patterns(s.Selector.Pods), ExcludePods: patterns(s.Selector.ExcludePods),
			Containers: patterns(s.Selector.Containers), ExcludeContainers: patterns(s.Selector.ExcludeContainers)}
		if s.Scope.AllNamespaces {
			sel.AllNamespaces = true
		} else {
			sel.Namespace = s.Scope.Namespace
		}
		r.Selected = append(r.Selected, sel)
	}
	o.journal = &journal{run: r}
	if err := dir.StartRun(r); err != nil {
		return fmt.Errorf("starting the run: %w", err)
	}
	return nil
}

func patterns(res []*regexp.Regexp) []string {
	var out []string
	for _, re := range res {
		out = append(out, re.String())
	}
	return out
}

// ranSummary notes the run's totals for its end in the journal.
func (o *Options) ranSummary(s Summary) {
	if o.journal == nil {
		return
	}
	o.journal.totals = &store.Totals{Containers: s.Selected, Lines: s.Lines, Bytes: s.Bytes,
		Gaps: s.Gaps, Failed: s.Failed, FailedNamespaces: len(s.Namespaces)}
}

// openRun opens and locks the export directory and starts the run in its journal.
func (o *Options) openRun(ctx context.Context, mode string) (destination, error) {
	dir, err := o.openDest(ctx)
	if err != nil {
		return nil, err
	}
	if err := o.startRun(dir, mode); err != nil {
		_ = dir.Close()
		return nil, err
	}
	return dir, nil
}

// finishRun ends the run in the journal, with the exit code *err gives the process; a journal
// that cannot be written fails the run, which has no other record.
func (o *Options) finishRun(dir destination, err *error) {
	if jerr := o.endRun(dir, *err); jerr != nil && *err == nil {
		*err = fmt.Errorf("ending the run: %w", jerr)
	}
}

// endRun appends the run's end to the journal, with the exit code err gives the process.
func (o *Options) endRun(dir destination, err error) error {
	if o.journal == nil {
		return nil
	}
	r := o.journal.run
	end := o.now().UTC()
	code := 0
	if err != nil {
		code = 1
		r.Error = err.Error()
	}
	r.End, r.ExitCode, r.Totals = &end, &code, o.journal.totals
	o.journal = nil
	return dir.EndRun(r)
}

// who says who runs the export, from the kubeconfig and the flags: names only, never a
// credential.
func (o *Options) who() store.Who {
	var w store.Who
	if h, err := os.Hostname(); err == nil {
		w.Host = h
	}
	f := o.configFlags
	if f.Impersonate != nil {
		w.As = *f.Impersonate
	}
	if f.ImpersonateGroup != nil {
		w.AsGroup = *f.ImpersonateGroup
	}
	raw, err := f.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		klog.V(1).InfoS("no kubeconfig to name the run's user", "err", err)
		return w
	}
	w.Context = raw.CurrentContext
	if f.Context != nil && *f.Context != "" {
		w.Context = *f.Context
	}
	if c := raw.Contexts[w.Context]; c != nil {
		w.Cluster, w.User = c.Cluster, c.AuthInfo
	}
	if f.ClusterName != nil && *f.ClusterName != "" {
		w.Cluster = *f.ClusterName
	}
	if f.AuthInfoName != nil && *f.AuthInfoName != "" {
		w.User = *f.AuthInfoName
	}
	return w
}
