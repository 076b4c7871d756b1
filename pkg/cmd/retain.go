package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// validateRetention checks --retain and --compress. A follower holds the directory for as long as
// it runs, so nothing else could ever apply them beside it; they are refused there rather than
// run on a timer of its own, which would remove a log the follower may still be asked to open.
func (o *Options) validateRetention() error {
	switch {
	case o.Retain < 0:
		return fmt.Errorf("--retain must be positive")
	case o.Follow && (o.Retain > 0 || o.Compress):
		return fmt.Errorf("--retain and --compress apply to one-shot runs, not with --follow: run them from a one-shot run while no follower holds the directory")
	}
	return nil
}

// maintain applies --retain and --compress after the exports: only in the namespaces the run
// covers, and there only once every pod of the namespace is listed again (no selector, no
// pattern), so that a pod the run did not select is never taken for gone. The journal is trimmed
// by the same retention, never of the run itself.
func (o *Options) maintain(ctx context.Context, client kubernetes.Interface, dir *store.Dir) (*store.Maintained, error) {
	if o.Retain == 0 && !o.Compress {
		return nil, nil
	}
	kept, err := dir.Namespaces()
	if err != nil {
		return nil, err
	}
	all := false
	var covered []string
	for _, s := range o.selections {
		if s.Scope.AllNamespaces {
			all = true
		} else if !slices.Contains(covered, s.Scope.Namespace) {
			covered = append(covered, s.Scope.Namespace)
		}
	}
	var namespaces []string
	for _, ns := range kept {
		if all || slices.Contains(covered, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	now := o.now()
	r := store.Retention{Now: now, Retain: o.Retain, Compress: o.Compress}
	done := &store.Maintained{}
	var errs []error
	if len(namespaces) > 0 {
		presence, failed, err := podselect.ListPresence(ctx, client, namespaces, all, o.listChunk())
		if err != nil {
			return nil, fmt.Errorf("retention: %w", err)
		}
		for _, f := range failed {
			errs = append(errs, fmt.Errorf("retention skipped namespace %s: %w", f.Namespace, f.Err))
		}
		for _, ns := range namespaces {
			present, ok := presence.Complete(ns)
			if !ok {
				continue
			}
			m, err := dir.Maintain(ns, present, r)
			if m != nil {
				done.Gone = append(done.Gone, m.Gone...)
				done.Back = append(done.Back, m.Back...)
				done.Compressed = append(done.Compressed, m.Compressed...)
				done.Removed = append(done.Removed, m.Removed...)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("retention in namespace %s: %w", ns, err))
			}
		}
	}
	if o.Retain > 0 {
		cutoff := now.Add(-o.Retain)
		if o.journal != nil && o.journal.run.Start.Before(cutoff) {
			cutoff = o.journal.run.Start
		}
		if err := dir.TrimJournal(cutoff); err != nil {
			errs = append(errs, fmt.Errorf("trimming the run journal: %w", err))
		}
	}
	return done, errors.Join(errs...)
}

// printMaintained says what retention and compression did, on stderr, as the totals line is.
func (o *Options) printMaintained(m *store.Maintained) {
	if m == nil {
		return
	}
	if o.Compress {
		fmt.Fprintf(o.ErrOut, "compressed %d finished logs (their pods are gone)\n", len(m.Compressed))
	}
	if o.Retain > 0 {
		fmt.Fprintf(o.ErrOut, "removed %d logs of pods gone for more than %s\n", len(m.Removed), o.Retain.Round(time.Second))
	}
}
