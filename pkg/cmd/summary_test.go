package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// TestSummarize: the totals are those of the rows, each row's status that of its result.
func TestSummarize(t *testing.T) {
	for name, tc := range map[string]struct {
		results                []export.Result
		statuses               string
		selected, failed, gaps int
		lines, bytes           int64
	}{
		"none": {statuses: ""},
		"each status": {
			results: []export.Result{
				{Target: target.Target{Container: "ok"}, Lines: 2, Bytes: 10},
				{Target: target.Target{Container: "idle"}},
				{Target: target.Target{Container: "gap"}, Lines: 1, Bytes: 3, Gaps: []export.Gap{{Reason: "r"}, {Reason: "s"}}},
				{Target: target.Target{Container: "bad"}, Lines: 5, Err: errors.New("boom")},
				{Target: target.Target{Container: "new"}, Skipped: "not started"},
			},
			statuses: "ok=ok idle=up to date gap=gap bad=failed new=not started",
			selected: 5, failed: 1, gaps: 2, lines: 8, bytes: 13,
		},
		"an error wins over a gap": {
			results:  []export.Result{{Target: target.Target{Container: "c"}, Gaps: []export.Gap{{Reason: "r"}}, Err: errors.New("boom")}},
			statuses: "c=failed", selected: 1, failed: 1, gaps: 1,
		},
	} {
		t.Run(name, func(t *testing.T) {
			rows := make([]ContainerSummary, len(tc.results))
			for i, r := range tc.results {
				rows[i] = containerSummary(r)
			}
			s := summarize(rows, nil)
			var got []string
			for _, c := range s.Containers {
				got = append(got, c.Container+"="+c.Status)
			}
			if strings.Join(got, " ") != tc.statuses || s.Selected != tc.selected || s.Failed != tc.failed ||
				s.Gaps != tc.gaps || s.Lines != tc.lines || s.Bytes != tc.bytes {
				t.Errorf("got %v %+v", got, s)
			}
			if n := newSummary(tc.results, nil); fmt.Sprint(n) != fmt.Sprint(s) {
				t.Errorf("newSummary %+v, summarize %+v", n, s)
			}
		})
	}
}

// TestWriteJSON: the summary written a row at a time is what json.Encoder writes of it at once,
// byte for byte, so that scripts reading -o json see the same document.
func TestWriteJSON(t *testing.T) {
	to := time.Date(2026, 11, 30, 1, 2, 3, 4, time.UTC)
	gaps := []export.Gap{{Reason: "rotated <before> & after"}, {From: to.Add(-time.Hour), To: &to, Reason: "restarted"}}
	row := func(i int) ContainerSummary {
		return ContainerSummary{Namespace: "ns", Pod: fmt.Sprintf("pod-%d", i), Container: "c\"\u2028", File: "/d/ns/pod/c.log", Lines: int64(i), Bytes: int64(i * 10), Status: "ok"}
	}
	for name, s := range map[string]Summary{
		"empty":    {Containers: []ContainerSummary{}},
		"nil rows": {},
		"one row":  {Containers: []ContainerSummary{row(1)}, Selected: 1, Lines: 1, Bytes: 10},
		"rows, gaps, errors, namespaces, retention": {
			Containers: []ContainerSummary{row(1), {Namespace: "ns", Pod: "p", Container: "g", Status: "gap", Gaps: gaps}, {Pod: "q", Status: statusFailed, Error: "boom: <html>"}, row(4)},
			Namespaces: []NamespaceSummary{{Namespace: "secret", Error: "forbidden"}},
			Selected:   4, Lines: 5, Bytes: 50, Failed: 1, Gaps: 2,
			Retention: &store.Maintained{},
		},
	} {
		t.Run(name, func(t *testing.T) {
			var want, got bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if s.Containers == nil {
				// The run never prints nil rows: writeJSON prints none as [].
				if err := enc.Encode(Summary{Containers: []ContainerSummary{}}); err != nil {
					t.Fatal(err)
				}
			} else if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			if err := writeJSON(&got, s); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("writeJSON wrote\n%s\njson.Encoder\n%s", got.String(), want.String())
			}
		})
	}
}

// TestRunSummary: a one-shot run's summary, its rows taken in any order and only those printed at
// the end held, prints what the summary of all the rows prints, on stdout and stderr, in every
// output and --summary mode; its totals are those of every row.
func TestRunSummary(t *testing.T) {
	var rows []ContainerSummary
	for i := range 40 {
		r := export.Result{Target: target.Target{Namespace: "ns", Pod: fmt.Sprintf("pod-%02d", i), Container: "c"}, File: "ns/p/c.log"}
		switch i % 5 {
		case 0:
			r.Lines, r.Bytes = int64(i), int64(10*i)
		case 2:
			r.Gaps = []export.Gap{{Reason: "rotated"}}
		case 3:
			r.Err = errors.New("boom")
		case 4:
			r.Skipped = "not started"
		}
		rows = append(rows, containerSummary(r))
	}
	nsErrs := []podselect.NamespaceError{{Namespace: "secret", Err: errors.New("forbidden")}}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, output := range []string{"", "json"} {
		for _, mode := range []string{summaryAll, summaryChanged, summaryNone} {
			for _, n := range []int{0, 1, len(rows)} {
				t.Run(fmt.Sprintf("%q %s %d rows", output, mode, n), func(t *testing.T) {
					print := func(streamed bool) (string, string, Summary) {
						streams, _, out, errOut := genericiooptions.NewTestIOStreams()
						o := NewOptions(streams)
						o.Output, o.Summary = output, mode
						var s Summary
						var j *jsonSummary
						if streamed {
							sum := o.newRunSummary()
							for _, i := range rng.Perm(n) {
								sum.add(i, rows[i])
							}
							s, j = sum.summary(nsErrs), sum.json
						} else {
							s = summarize(rows[:n:n], nsErrs)
						}
						if err := o.printSummary(s, j); err != nil {
							t.Fatal(err)
						}
						return out.String(), errOut.String(), s
					}
					wantOut, wantErr, want := print(false)
					gotOut, gotErr, got := print(true)
					if gotOut != wantOut || gotErr != wantErr {
						t.Errorf("stdout\n%s\nstderr\n%s\nwant stdout\n%s\nstderr\n%s", gotOut, gotErr, wantOut, wantErr)
					}
					got.Containers, want.Containers = nil, nil
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("totals %+v, want %+v", got, want)
					}
				})
			}
		}
	}
}

// writeCounter counts the writes that reach it.
type writeCounter struct {
	bytes.Buffer
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

// TestSummaryWrites: the summary of 2,000 containers reaches stdout in writes of 32 KiB, not in
// one write per cell (a system call each when stdout is a file or a pipe), as a table and as JSON.
func TestSummaryWrites(t *testing.T) {
	var rows []ContainerSummary
	for i := range 2000 {
		r := export.Result{Target: target.Target{Namespace: "ns", Pod: fmt.Sprintf("pod-%04d", i), Container: "c"}, File: "ns/p/c.log", Lines: int64(i), Bytes: int64(100 * i)}
		rows = append(rows, containerSummary(r))
	}
	for _, output := range []string{"", "json"} {
		t.Run(fmt.Sprintf("%q", output), func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			out := &writeCounter{}
			streams.Out = out
			o := NewOptions(streams)
			o.Output = output
			sum := o.newRunSummary()
			for i := range rows {
				sum.add(i, rows[i])
			}
			if err := o.printSummary(sum.summary(nil), sum.json); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(out.String(), "pod-"); got != len(rows) {
				t.Fatalf("%d rows printed, want %d", got, len(rows))
			}
			if most := out.Len()/(32<<10) + 2; out.writes > most {
				t.Errorf("%d bytes in %d writes, want at most %d", out.Len(), out.writes, most)
			}
		})
	}
}
