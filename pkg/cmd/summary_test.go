package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/export"
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
