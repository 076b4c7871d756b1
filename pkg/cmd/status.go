package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// StatusOptions are the settings of kubectl logexport status.
type StatusOptions struct {
	genericiooptions.IOStreams
	Dir    string
	Output string
	Bucket bucketFlags
	// Runs is how many of the newest runs the table shows.
	Runs int
}

func newStatusCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{IOStreams: streams, Dir: "logs", Runs: 5}
	cmd := &cobra.Command{
		Use:   "status [-d DIR] [-o json]",
		Short: "Show what an export directory holds, its gaps and its last runs",
		Long: templates.LongDesc(`
			Show what an export directory holds: for each container the lines and bytes stored,
			the first and last timestamps, whether the log is compressed, and the gaps kept
			beside it; then the last runs from the run journal.

			It reads the directory without its lock and writes nothing, so it can run while a
			follower exports into it. The exit code is 1 when the last run failed, was killed,
			or found a gap, so that a cron job or a probe can act on it.`),
		Example: templates.Examples(`
			# What ./logs holds
			kubectl logexport status

			# Everything, with each gap and each run, as JSON
			kubectl logexport status -d /data -o json`),
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(c.Context())
		},
	}
	cmd.Flags().StringVarP(&o.Dir, "dir", "d", o.Dir, "Export directory (or s3://BUCKET/PREFIX) to describe")
	o.Bucket.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format: '' (tables) or json")
	cmd.Flags().IntVar(&o.Runs, "runs", o.Runs, "How many of the newest runs the table shows (json shows every run)")
	return cmd
}

// Validate checks the flags.
func (o *StatusOptions) Validate() error {
	switch {
	case o.Output != "" && o.Output != "json":
		return fmt.Errorf("unsupported output format %q: use json, or leave it empty for a table", o.Output)
	case o.Dir == "":
		return fmt.Errorf("--dir must not be empty")
	case o.Runs < 0:
		return fmt.Errorf("--runs must not be negative")
	}
	return nil
}

// Status is the JSON of kubectl logexport status.
type Status struct {
	*store.Inventory
	// Problem is why the exit code is 1, "" when it is 0.
	Problem string `json:"problem,omitempty"`
}

// Run prints the directory's state and fails when its newest run failed or found a gap.
func (o *StatusOptions) Run(ctx context.Context) error {
	inv, err := o.inspect(ctx)
	if err != nil {
		return err
	}
	st := Status{Inventory: inv, Problem: inv.Problem()}
	if o.Output == "json" {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return err
		}
	} else if err := o.printTables(inv); err != nil {
		return err
	}
	for _, w := range inv.Warnings {
		fmt.Fprintf(o.ErrOut, "warning: %s\n", w)
	}
	if st.Problem != "" {
		return errors.New(st.Problem)
	}
	return nil
}

// inspect reads the directory, or the bucket.
func (o *StatusOptions) inspect(ctx context.Context) (*store.Inventory, error) {
	if !objstore.IsURL(o.Dir) {
		return store.Inspect(o.Dir)
	}
	u, err := objstore.ParseURL(o.Dir)
	if err != nil {
		return nil, err
	}
	b, err := o.Bucket.open(ctx, u)
	if err != nil {
		return nil, err
	}
	d, err := bucket.OpenRead(ctx, b, u.Prefix)
	if err != nil {
		return nil, err
	}
	return d.Inspect()
}

// printTables prints the logs, their gaps and the newest runs, each a table of its own.
func (o *StatusOptions) printTables(inv *store.Inventory) error {
	w := newTable(o.Out)
	if len(inv.Logs) == 0 {
		fmt.Fprintf(o.ErrOut, "No logs stored in %s.\n", o.Dir)
	} else {
		fmt.Fprintln(w, "NAMESPACE\tPOD\tCONTAINER\tLINES\tBYTES\tFIRST\tLAST\tSTORED\tGAPS")
		for _, l := range inv.Logs {
			stored := "log"
			switch {
			case l.File == "":
				stored = "none"
			case l.Compressed:
				stored = "compressed"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%d\n", l.Namespace, l.Pod, l.Container, l.Lines, l.Bytes,
				timeOrNone(l.First), timeOrNone(l.Last), stored, len(l.Gaps))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var gaps bool
	for _, l := range inv.Logs {
		for _, g := range l.Gaps {
			if !gaps {
				gaps = true
				fmt.Fprintln(w, "\nNAMESPACE\tPOD\tCONTAINER\tGAP FROM\tGAP TO\tFOUND BY RUN\tREASON")
			}
			from := "unknown"
			if !g.From.IsZero() {
				from = g.From.UTC().Format(time.RFC3339)
			}
			to := "later lines"
			if g.To != nil {
				to = g.To.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Namespace, l.Pod, l.Container, from, to, g.Run, g.Reason)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	runs := inv.Runs[max(0, len(inv.Runs)-o.Runs):]
	if len(runs) > 0 {
		fmt.Fprintln(w, "\nRUN\tMODE\tSTARTED\tDURATION\tSTATE\tEXIT\tCONTAINERS\tLINES\tGAPS\tFAILED")
		// Newest first, as kubectl events shows the newest where the eye lands.
		for i := len(runs) - 1; i >= 0; i-- {
			r := runs[i]
			dur, exit, containers, lines, gaps, failed := "-", "-", "-", "-", fmt.Sprint(r.GapsRecorded), "-"
			if r.End != nil {
				dur = r.End.Sub(r.Start).Round(time.Second).String()
			}
			if r.ExitCode != nil {
				exit = fmt.Sprint(*r.ExitCode)
			}
			if t := r.Totals; t != nil {
				containers, lines, gaps, failed = fmt.Sprint(t.Containers), fmt.Sprint(t.Lines), fmt.Sprint(max(t.Gaps, r.GapsRecorded)), fmt.Sprint(t.Failed+t.FailedNamespaces)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Mode, r.Start.UTC().Format(time.RFC3339), dur, r.State, exit, containers, lines, gaps, failed)
		}
	}
	return w.Flush()
}

func timeOrNone(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
