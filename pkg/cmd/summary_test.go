package cmd

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/logexport/kubectl-logexport/pkg/export"
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
