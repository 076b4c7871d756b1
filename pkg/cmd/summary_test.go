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

	"k8s.io/cli-runtime/pkg/printers"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// tabwriterTable is the table as kubectl's tabwriter prints it, which writeTable must match.
func tabwriterTable(t *testing.T, rows []ContainerSummary) string {
	t.Helper()
	var b bytes.Buffer
	if len(rows) == 0 {
		return ""
	}
	w := printers.GetNewTabWriter(&b)
	fmt.Fprintln(w, "NAMESPACE\tPOD\tCONTAINER\tLINES\tBYTES\tSTATUS")
	for _, c := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", c.Namespace, c.Pod, c.Container, c.Lines, c.Bytes, c.Status)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// encoderJSON is the summary as a json.Encoder indenting by two spaces writes it, which writeJSON
// must match.
func encoderJSON(t *testing.T, s Summary) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func summaryCases() map[string]Summary {
	to := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	rows := []ContainerSummary{
		{Namespace: "a", Pod: "p", Container: "c", File: "out/a/p/c.log", Lines: 12, Bytes: 3456, Status: "ok"},
		{Namespace: "kube-system", Pod: "coredns-7db6d8ff4d-abcde", Container: "coredns", Status: statusUpToDate},
		{Namespace: "b", Pod: "p", Container: "gap", Lines: 1, Bytes: 2, Status: "gap",
			Gaps: []export.Gap{{From: to.Add(-time.Hour), To: &to, Reason: "rotated <fast> & away"}, {Reason: "replaced"}}},
		{Namespace: "b", Pod: "p", Container: "bad", Status: statusFailed, Error: "refusing \"x\" <html> & \u2028"},
		{Namespace: "b", Pod: "p", Container: "new", Status: "not started"},
	}
	return map[string]Summary{
		"none":              summarize([]ContainerSummary{}, nil),
		"nil rows":          {Selected: 3, Lines: 4},
		"one":               summarize(rows[:1], nil),
		"statuses":          summarize(rows, nil),
		"failed namespaces": summarize(rows[1:3], []podselect.NamespaceError{{Namespace: "x", Err: errors.New("forbidden")}}),
		"retention": func() Summary {
			s := summarize(rows, nil)
			s.Retention = &store.Maintained{Gone: []string{"a/p/c"}, Removed: []string{"b/q/d"}}
			return s
		}(),
		"wide unicode": summarize([]ContainerSummary{
			{Namespace: "ns", Pod: "pöd-ünïcode-名前", Container: "c", Lines: 1 << 40, Bytes: 1 << 50, Status: "ok"},
			{Namespace: "a-very-long-namespace-name-indeed", Pod: "", Container: "", Status: ""},
		}, nil),
	}
}

// TestWriteSummary: the summary written row by row is byte for byte what kubectl's tabwriter and
// json.Encoder print of it whole.
func TestWriteSummary(t *testing.T) {
	for name, s := range summaryCases() {
		t.Run(name, func(t *testing.T) {
			var table, js bytes.Buffer
			if err := writeTable(&table, s.Containers); err != nil {
				t.Fatal(err)
			}
			if want := tabwriterTable(t, s.Containers); table.String() != want {
				t.Errorf("table:\n%s\nwant:\n%s", table.String(), want)
			}
			if err := writeJSON(&js, s); err != nil {
				t.Fatal(err)
			}
			if want := encoderJSON(t, s); js.String() != want {
				t.Errorf("json:\n%s\nwant:\n%s", js.String(), want)
			}
		})
	}
}

// TestWriteSummaryRandom compares random summaries: names of every length around the minimum
// width, multibyte runes, numbers of every width.
func TestWriteSummaryRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab-0é名")
	word := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	statuses := []string{"ok", "gap", statusFailed, statusUpToDate, "not started"}
	for i := range 300 {
		rows := make([]ContainerSummary, rng.IntN(6))
		for j := range rows {
			rows[j] = ContainerSummary{Namespace: word(), Pod: word(), Container: word(), File: word(),
				Lines: rng.Int64N(1 << uint(rng.IntN(40)+1)), Bytes: rng.Int64N(1 << uint(rng.IntN(50)+1)), Status: statuses[rng.IntN(len(statuses))]}
			if rng.IntN(4) == 0 {
				rows[j].Gaps = []export.Gap{{Reason: word()}}
			}
			if rows[j].Status == statusFailed {
				rows[j].Error = word()
			}
		}
		s := summarize(rows, nil)
		var table, js bytes.Buffer
		if err := writeTable(&table, s.Containers); err != nil {
			t.Fatal(err)
		}
		if want := tabwriterTable(t, s.Containers); table.String() != want {
			t.Fatalf("case %d: table:\n%s\nwant:\n%s", i, table.String(), want)
		}
		if err := writeJSON(&js, s); err != nil {
			t.Fatal(err)
		}
		if want := encoderJSON(t, s); js.String() != want {
			t.Fatalf("case %d: json:\n%s\nwant:\n%s", i, js.String(), want)
		}
	}
}

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
