package cmd

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/pull"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// PullOptions are the settings of kubectl logexport pull.
type PullOptions struct {
	genericiooptions.IOStreams
	Source    string
	Dir       string
	Patterns  []string
	Namespace string
	Since     time.Duration
	Bucket    bucketFlags

	url  objstore.URL
	pods []*regexp.Regexp
	now  func() time.Time
}

func newPullCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &PullOptions{IOStreams: streams, Dir: "logs", now: time.Now}
	cmd := &cobra.Command{
		Use:   "pull s3://BUCKET[/PREFIX] [-d DIR] [-p REGEX] [--since DURATION]",
		Short: "Copy the logs an export stored in a bucket into a local directory",
		Long: templates.LongDesc(`
			Copy the logs an export stored in a bucket into a local directory, as a local export
			stores them: DIR/NAMESPACE/POD/CONTAINER.log. Run it again to fetch only what is new:
			each file is brought up to its checkpoint in the bucket, segment by segment.

			A directory pulled whole carries the bucket's checkpoints, so it is the same as a
			local export of the same pods.`),
		Example: templates.Examples(`
			# Everything the in-cluster exporter stored, into ./logs
			kubectl logexport pull s3://team-logs/prod

			# The redis pods' logs of the last two days, into /tmp/redis
			kubectl logexport pull s3://team-logs/prod -p 'redis.*' --since 48h -d /tmp/redis`),
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(c.Context())
		},
	}
	cmd.Flags().StringVarP(&o.Dir, "dir", "d", o.Dir, "Directory to pull into")
	cmd.Flags().StringArrayVarP(&o.Patterns, "pod", "p", nil, "Pull only pods whose name matches this regular expression (repeatable)")
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", "", "Pull only this namespace")
	cmd.Flags().DurationVar(&o.Since, "since", 0, "Start a log pulled for the first time at this long ago: at the last segment that began before that day (whole days)")
	o.Bucket.AddFlags(cmd.Flags())
	return cmd
}

// Complete parses the source and the patterns.
func (o *PullOptions) Complete(args []string) error {
	o.Source = args[0]
	var err error
	if o.url, err = objstore.ParseURL(o.Source); err != nil {
		return err
	}
	for _, p := range o.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("invalid --pod %q: %w", p, err)
		}
		o.pods = append(o.pods, re)
	}
	return nil
}

// Validate checks the flags.
func (o *PullOptions) Validate() error {
	switch {
	case o.Dir == "":
		return fmt.Errorf("--dir must not be empty")
	case objstore.IsURL(o.Dir):
		return fmt.Errorf("--dir must be a local directory, not %s", o.Dir)
	case o.Since < 0:
		return fmt.Errorf("--since must be positive")
	}
	return nil
}

// Run pulls and prints what each container got.
func (o *PullOptions) Run(ctx context.Context) error {
	b, err := o.Bucket.open(ctx, o.url)
	if err != nil {
		return err
	}
	src, err := bucket.OpenRead(ctx, b, o.url.Prefix)
	if err != nil {
		return err
	}
	dst, err := store.Open(o.Dir, src.Meta().Timestamps)
	if err != nil {
		return err
	}
	p := &pull.Puller{Bucket: b, Src: src, Dst: dst, Root: o.Dir,
		Options: pull.Options{Pods: o.pods, Namespace: o.Namespace}}
	if o.Since > 0 {
		p.Since = o.now().Add(-o.Since)
	}
	results, err := p.Pull(ctx)
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing %s: %w", o.Dir, cerr)
	}
	w := newTable(o.Out)
	if len(results) > 0 {
		fmt.Fprintln(w, "NAMESPACE\tPOD\tCONTAINER\tLINES\tBYTES\tSTATUS")
	}
	failed := 0
	var lines, bytes int64
	for _, r := range results {
		status := "pulled"
		switch {
		case r.Err != nil:
			status, failed = "failed", failed+1
			fmt.Fprintf(o.ErrOut, "error: %s/%s/%s: %v\n", r.Namespace, r.Pod, r.Container, r.Err)
		case r.UpToDate:
			status = "up to date"
		}
		lines, bytes = lines+r.Lines, bytes+r.Bytes
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", r.Namespace, r.Pod, r.Container, r.Lines, r.Bytes, status)
	}
	if ferr := w.Flush(); ferr != nil {
		return ferr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.ErrOut, "pulled %d lines (%d bytes) of %d containers from %s into %s\n", lines, bytes, len(results), o.url, o.Dir)
	if failed > 0 {
		return fmt.Errorf("%d of %d containers failed (the rest is pulled)", failed, len(results))
	}
	return nil
}
