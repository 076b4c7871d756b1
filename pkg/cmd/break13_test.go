package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// The functions as they were at ae712c6, straight onto printers.GetNewTabWriter(o.Out).
func oldPrintTables(o *StatusOptions, inv *store.Inventory) error {
	w := printers.GetNewTabWriter(o.Out)
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
func oldPrintSummary(o *Options, all Summary, streamed *jsonSummary) error {
	s := all.only(o.Summary)
	if o.Output == "json" {
		if o.Summary != summaryAll {
			// The rows --summary hides may not hold them all: the problems are told anyway.
			o.tellProblems(all)
		}
		if streamed != nil {
			return streamed.end(s)
		}
		return writeJSON(o.Out, s)
	}
	// As kubectl get: no header over no rows.
	if len(s.Containers) > 0 {
		w := printers.GetNewTabWriter(o.Out)
		fmt.Fprintln(w, "NAMESPACE\tPOD\tCONTAINER\tLINES\tBYTES\tSTATUS")
		for _, c := range s.Containers {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", c.Namespace, c.Pod, c.Container, c.Lines, c.Bytes, c.Status)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	o.tellProblems(all)
	for _, n := range s.Namespaces {
		fmt.Fprintf(o.ErrOut, "error: namespace %s: %s\n", n.Namespace, n.Error)
	}
	fmt.Fprintf(o.ErrOut, "exported %d lines (%d bytes) from %d containers into %s%s\n", s.Lines, s.Bytes, s.Selected, o.Dir, o.shardNote())
	return nil
}
func oldPrintDryRun(o *Options, targets []target.Target, nsErrs []podselect.NamespaceError) error {
	w := printers.GetNewTabWriter(o.Out)
	if len(targets) > 0 {
		fmt.Fprintln(w, "NAMESPACE\tPOD\tCONTAINER\tFILE")
	}
	for _, t := range targets {
		loc, err := o.logLocation(t.Namespace, t.Pod, t.Container)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Namespace, t.Pod, t.Container, loc)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, e := range nsErrs {
		fmt.Fprintf(o.ErrOut, "warning: %v\n", e)
	}
	return nil
}

// break13Name is a name of n runes, some wide or combining, some plain.
func break13Name(rng *rand.Rand, n int) string {
	alpha := []string{"a", "b", "z", "0", "-", ".", "ü", "日", "é", "x"}
	var b strings.Builder
	for range 1 + rng.IntN(n) {
		b.WriteString(alpha[rng.IntN(len(alpha))])
	}
	return b.String()
}

func break13Inventory(rng *rand.Rand, logs, gapsPer, runs int) *store.Inventory {
	inv := &store.Inventory{Dir: "d"}
	at := time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)
	for i := range logs {
		l := store.StoredLog{Namespace: break13Name(rng, 12), Pod: fmt.Sprintf("%s-%d", break13Name(rng, 40), i), Container: break13Name(rng, 20),
			Lines: rng.Int64N(1 << 40), Bytes: rng.Int64N(1 << 50), File: []string{"", "f"}[rng.IntN(2)], Compressed: rng.IntN(2) == 0}
		if rng.IntN(3) > 0 {
			f, la := at.Add(-time.Duration(rng.IntN(1e6))*time.Second), at
			l.First, l.Last = &f, &la
		}
		for range rng.IntN(gapsPer + 1) {
			g := store.Gap{Reason: break13Name(rng, 60), Run: break13Name(rng, 10)}
			if rng.IntN(2) == 0 {
				g.From = at
			}
			if rng.IntN(2) == 0 {
				to := at.Add(time.Hour)
				g.To = &to
			}
			l.Gaps = append(l.Gaps, g)
		}
		inv.Logs = append(inv.Logs, l)
	}
	for i := range runs {
		r := store.RunRecord{State: []string{"done", "running", "killed"}[rng.IntN(3)], GapsRecorded: rng.IntN(9)}
		r.ID, r.Mode, r.Start = fmt.Sprintf("run-%d-%s", i, break13Name(rng, 8)), []string{"export", "follow"}[rng.IntN(2)], at.Add(time.Duration(i)*time.Minute)
		if rng.IntN(2) == 0 {
			e := r.Start.Add(time.Duration(rng.IntN(1e4)) * time.Second)
			r.End = &e
			code := rng.IntN(3)
			r.ExitCode = &code
			r.Totals = &store.Totals{Containers: rng.IntN(1e4), Lines: rng.Int64N(1e12), Gaps: rng.IntN(50), Failed: rng.IntN(5)}
		}
		inv.Runs = append(inv.Runs, r)
	}
	return inv
}

// counting counts the writes that reach it.
type counting struct {
	bytes.Buffer
	writes int
}

func (w *counting) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func break13Status(out, errOut io.Writer, runs int) *StatusOptions {
	return &StatusOptions{IOStreams: genericiooptions.IOStreams{Out: out, ErrOut: errOut}, Dir: "d", Runs: runs}
}

var break13Sizes = []struct{ logs, gaps, runs int }{{0, 0, 0}, {0, 0, 3}, {1, 0, 0}, {1, 1, 1}, {3, 2, 7}, {40, 3, 10}, {700, 2, 900}, {2500, 1, 3000}}

// TestBreak13StatusSameBytes: status's tables (logs, gaps, runs, one tab writer flushed between
// them) are byte for byte those of the tab writer straight onto stdout; and stdout and stderr,
// when they are one file, hold the same as before.
func TestBreak13StatusSameBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	for _, sz := range break13Sizes {
		for rep := range 3 {
			inv := break13Inventory(rng, sz.logs, sz.gaps, sz.runs)
			for _, runs := range []int{0, 5, 1 << 20} {
				var got, want bytes.Buffer
				if err := break13Status(&got, &got, runs).printTables(inv); err != nil {
					t.Fatal(err)
				}
				if err := oldPrintTables(break13Status(&want, &want, runs), inv); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Fatalf("%+v rep %d runs %d: %d bytes differ from the old %d", sz, rep, runs, got.Len(), want.Len())
				}
			}
		}
	}
}

func break13Summary(rng *rand.Rand, n int) Summary {
	var rows []ContainerSummary
	for i := range n {
		r := export.Result{Target: target.Target{Namespace: break13Name(rng, 10), Pod: fmt.Sprintf("%s-%d", break13Name(rng, 50), i), Container: break13Name(rng, 15)},
			File: "f", Lines: rng.Int64N(1 << 40), Bytes: rng.Int64N(1 << 50)}
		if rng.IntN(5) == 0 {
			r.Err = errors.New("boom")
		}
		rows = append(rows, containerSummary(r))
	}
	s := Summary{Containers: rows, Selected: n}
	if rng.IntN(2) == 0 {
		s.Namespaces = []NamespaceSummary{{Namespace: "gone", Error: "forbidden"}}
	}
	return s
}

func break13Options(out, errOut io.Writer) *Options {
	o := NewOptions(genericiooptions.IOStreams{Out: out, ErrOut: errOut})
	o.Dir = "d"
	return o
}

// TestBreak13SummarySameBytes: the summary table, and what follows it on stderr, as before, for
// every --summary choice (stdout and stderr one file, so that the order shows).
func TestBreak13SummarySameBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 3))
	for _, n := range []int{0, 1, 2, 30, 600, 3000} {
		s := break13Summary(rng, n)
		for _, sum := range []string{summaryAll, "failed", "none", ""} {
			var got, want bytes.Buffer
			o := break13Options(&got, &got)
			o.Summary = sum
			if err := o.printSummary(s, nil); err != nil {
				t.Fatal(err)
			}
			o = break13Options(&want, &want)
			o.Summary = sum
			if err := oldPrintSummary(o, s, nil); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("%d rows --summary=%q: %d bytes differ from the old %d", n, sum, got.Len(), want.Len())
			}
		}
	}
}

// TestBreak13DryRunSameBytes: --dry-run's table, warnings after it, and the error of an unsafe
// name midway (nothing printed, as before), as before.
func TestBreak13DryRunSameBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 4))
	for _, n := range []int{0, 1, 5, 800, 3000} {
		var targets []target.Target
		for i := range n {
			targets = append(targets, target.Target{Namespace: "ns", Pod: fmt.Sprintf("p%s-%d", "abc"[i%3:], i), Container: fmt.Sprintf("c%d", rng.IntN(100))})
		}
		nsErrs := []podselect.NamespaceError{{Namespace: "x", Err: errors.New("forbidden")}}
		for _, bad := range []bool{false, true} {
			ts := targets
			if bad {
				ts = append(append([]target.Target{}, targets...), target.Target{Namespace: "ns", Pod: "../up", Container: "c"})
			}
			var got, want bytes.Buffer
			gerr := break13Options(&got, &got).printDryRun(ts, nsErrs)
			werr := oldPrintDryRun(break13Options(&want, &want), ts, nsErrs)
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("%d targets bad %v: %d bytes (%v), old %d bytes (%v)", n, bad, got.Len(), gerr, want.Len(), werr)
			}
		}
	}
}

// failAfter takes n bytes, then fails every write (or, short, takes part of one without an error).
type failAfter struct {
	n     int
	short bool
	got   bytes.Buffer
}

var errBreak13 = errors.New("disk full")

func (w *failAfter) Write(p []byte) (int, error) {
	if w.n >= len(p) {
		w.n -= len(p)
		return w.got.Write(p)
	}
	k := w.n
	w.n = 0
	w.got.Write(p[:k])
	if w.short {
		return k, nil
	}
	return k, errBreak13
}

// TestBreak13TableErrors: a writer that fails or writes short, at any byte of the output, is an
// error from summary, status and dry-run whenever it was before; and what reached it before the
// failure is a prefix of the full output.
func TestBreak13TableErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 5))
	inv := break13Inventory(rng, 300, 2, 400)
	s := break13Summary(rng, 900)
	var targets []target.Target
	for i := range 900 {
		targets = append(targets, target.Target{Namespace: "ns", Pod: fmt.Sprintf("pod-%d", i), Container: "c"})
	}
	cases := map[string]func(out io.Writer, old bool) error{
		"status": func(out io.Writer, old bool) error {
			if old {
				return oldPrintTables(break13Status(out, io.Discard, 1<<20), inv)
			}
			return break13Status(out, io.Discard, 1<<20).printTables(inv)
		},
		"summary": func(out io.Writer, old bool) error {
			if old {
				return oldPrintSummary(break13Options(out, io.Discard), s, nil)
			}
			return break13Options(out, io.Discard).printSummary(s, nil)
		},
		"dry-run": func(out io.Writer, old bool) error {
			if old {
				return oldPrintDryRun(break13Options(out, io.Discard), targets, nil)
			}
			return break13Options(out, io.Discard).printDryRun(targets, nil)
		},
	}
	for name, run := range cases {
		var full bytes.Buffer
		if err := run(&full, false); err != nil {
			t.Fatal(err)
		}
		for _, short := range []bool{false, true} {
			for _, at := range []int{0, 1, 100, 32<<10 - 1, 32 << 10, 32<<10 + 1, 70000, full.Len() - 1} {
				if at >= full.Len() {
					continue
				}
				w, ow := &failAfter{n: at, short: short}, &failAfter{n: at, short: short}
				err, oerr := run(w, false), run(ow, true)
				if oerr == nil {
					t.Fatalf("%s: the old code took a failing writer", name)
				}
				if err == nil {
					t.Errorf("%s short=%v at %d: no error (old: %v)", name, short, at, oerr)
				} else if !errors.Is(err, errBreak13) && !errors.Is(err, io.ErrShortWrite) {
					t.Errorf("%s short=%v at %d: %v", name, short, at, err)
				}
				if !bytes.HasPrefix(full.Bytes(), w.got.Bytes()) {
					t.Errorf("%s short=%v at %d: wrote what is not a prefix of the output", name, short, at)
				}
			}
		}
	}
}

// TestBreak13TableThenMore: a table followed by more text on the same writer, flushed between
// (status's pattern), or a table then direct writes to Out after Flush: nothing lost, in order.
func TestBreak13TableThenMore(t *testing.T) {
	for _, n := range []int{1, 10, 5000} {
		var got, want bytes.Buffer
		tw, rw := newTable(&got), printers.GetNewTabWriter(&want)
		for i := range n {
			fmt.Fprintf(tw, "a\t%d\tb\n", i)
			fmt.Fprintf(rw, "a\t%d\tb\n", i)
		}
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		rw.Flush()
		got.WriteString("after\n")
		want.WriteString("after\n")
		// A line of one cell flushes the tab writer by itself; text with no newline at the end.
		for _, s := range []string{"single\n", "x\ty\n", "\nh\tk\n", "tail-no-newline"} {
			fmt.Fprint(tw, s)
			fmt.Fprint(rw, s)
		}
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		rw.Flush()
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%d rows: %q\nwant %q", n, tail(got.String()), tail(want.String()))
		}
	}
}

func tail(s string) string { return s[max(0, len(s)-200):] }
