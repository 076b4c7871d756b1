package cmd

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// runInto records one run into dir as the command does: its journal start, one container's
// lines and gaps, its summary and its end with the exit code err gives.
func runInto(t *testing.T, dir string, now time.Time, gaps []store.Gap, runErr error) string {
	t.Helper()
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	o := NewOptions(streams)
	o.now = func() time.Time { return now }
	sel, err := podselect.Compile([]string{"redis"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.selections = []podselect.Selection{{Scope: podselect.Scope{Namespace: "shop"}, Selector: sel}}
	o.Dir = dir
	d, err := o.openRun(context.Background(), "once")
	if err != nil {
		t.Fatal(err)
	}
	id := o.journal.run.ID
	l, err := d.Append("shop", "redis-0", "redis")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("ready\n")); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
	cp := store.Checkpoint{Instance: "containerd://1", Lines: 1, Begin: now, Last: now}
	if old := l.Checkpoint(); old != nil {
		cp.Lines, cp.Begin = old.Lines+1, old.Begin
	}
	l.AddGaps(gaps...)
	if err := l.Commit(cp); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := Summary{Containers: []ContainerSummary{{Namespace: "shop", Pod: "redis-0", Container: "redis", Lines: 1, Bytes: 6}}, Lines: 1, Bytes: 6, Gaps: len(gaps)}
	o.ranSummary(s)
	o.finishRun(d, &runErr)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStatus(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	to := t0.Add(time.Minute)
	tests := []struct {
		name string
		// runs: for each, its gaps and whether it failed
		runs     []bool // found a gap
		failLast bool
		wantErr  string
	}{
		{name: "clean", runs: []bool{false}},
		{name: "gap", runs: []bool{false, true}, wantErr: "found 1 gaps"},
		{name: "clean after a gap", runs: []bool{true, false}},
		{name: "failed", runs: []bool{false}, failLast: true, wantErr: "failed: 1 of 1 containers failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var ids []string
			for i, gap := range tt.runs {
				var gaps []store.Gap
				if gap {
					gaps = []store.Gap{{From: t0, To: &to, Reason: "the log was rotated"}}
				}
				var err error
				if tt.failLast && i == len(tt.runs)-1 {
					err = failures(Summary{Failed: 1}, 1, nil)
				}
				ids = append(ids, runInto(t, dir, t0.Add(time.Duration(i)*time.Hour), gaps, err))
			}
			for _, output := range []string{"", "json"} {
				streams, _, out, errOut := genericiooptions.NewTestIOStreams()
				cmd := newStatusCmd(streams)
				cmd.SetArgs([]string{"-d", dir, "-o", output})
				err := cmd.Execute()
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("-o %q: error %v, want %q", output, err, tt.wantErr)
				}
				if errOut.Len() > 0 {
					t.Errorf("stderr %q", errOut)
				}
				if output == "" {
					table := out.String()
					if !strings.HasPrefix(table, "NAMESPACE   POD       CONTAINER   LINES   BYTES   FIRST                  LAST                   STORED   GAPS\n"+
						"shop        redis-0   redis       "+map[int]string{1: "1       6 ", 2: "2       12"}[len(tt.runs)]) {
						t.Fatalf("table:\n%s", table)
					}
					// Newest run first.
					runs := table[strings.Index(table, "\nRUN "):]
					if i, j := strings.Index(runs, ids[len(ids)-1]), strings.Index(runs, ids[0]); i < 0 || j < 0 || i > j {
						t.Fatalf("runs not listed newest first:\n%s", table)
					}
					if gap := slicesContains(tt.runs, true); gap != strings.Contains(table, "the log was rotated") {
						t.Fatalf("gap shown %v, want %v:\n%s", !gap, gap, table)
					}
					continue
				}
				var st Status
				if err := json.Unmarshal(out.Bytes(), &st); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if len(st.Runs) != len(tt.runs) || (st.Problem == "") != (tt.wantErr == "") {
					t.Fatalf("status %+v", st)
				}
				r := st.Runs[len(st.Runs)-1]
				if r.ID != ids[len(ids)-1] || r.State != store.RunEnded || r.Who.Host == "" || r.Selected[0].Namespace != "shop" || r.Selected[0].Pods[0] != "redis" {
					t.Fatalf("last run %+v", r)
				}
				l := st.Logs[0]
				if l.File != filepath.Join(dir, "shop", "redis-0", "redis.log") || !l.First.Equal(t0) || l.Lines != int64(len(tt.runs)) {
					t.Fatalf("log %+v", l)
				}
			}
		})
	}
}

func slicesContains(s []bool, v bool) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// status writes nothing and needs no lock: a directory that does not exist stays so.
func TestStatusMissingDirectory(t *testing.T) {
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	dir := filepath.Join(t.TempDir(), "none")
	cmd := newStatusCmd(streams)
	cmd.SetArgs([]string{"-d", dir})
	if err := cmd.Execute(); err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %v, want one line", err)
	}
	if _, err := store.Inspect(dir); err == nil {
		t.Fatal("status created the directory")
	}
}
