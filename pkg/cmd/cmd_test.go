package cmd

import (
	"cmp"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

func TestValidate(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		mutate    func(o *Options)
		wantErr   string
		wantSince time.Time
		// wantChunk is the selection's Scope.ChunkSize; 0 stands for the default, 500.
		wantChunk int64
	}{
		{name: "defaults"},
		{name: "bad pattern", mutate: func(o *Options) { o.Patterns = []string{"a("} }, wantErr: `invalid pod pattern "a("`},
		{name: "zero requests", mutate: func(o *Options) { o.MaxLogRequests = 0 }, wantErr: "--max-log-requests"},
		{name: "output", mutate: func(o *Options) { o.Output = "wide" }, wantErr: "unsupported output format"},
		{name: "since", mutate: func(o *Options) { o.Since = time.Hour }, wantSince: now.Add(-time.Hour)},
		{name: "since-time", mutate: func(o *Options) { o.SinceTime = "2023-05-01T00:00:00Z" }, wantSince: time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC)},
		{name: "both", mutate: func(o *Options) { o.Since, o.SinceTime = time.Hour, "2023-05-01T00:00:00Z" }, wantErr: "together"},
		{name: "negative since", mutate: func(o *Options) { o.Since = -time.Hour }, wantErr: "positive"},
		{name: "chunk size", mutate: func(o *Options) { o.ChunkSize = 7 }, wantChunk: 7},
		{name: "chunk size 0 lists in one request", mutate: func(o *Options) { o.ChunkSize = 0 }, wantChunk: -1},
		{name: "negative chunk size", mutate: func(o *Options) { o.ChunkSize = -1 }, wantErr: "--chunk-size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			o := NewOptions(streams)
			o.now = func() time.Time { return now }
			if tt.mutate != nil {
				tt.mutate(o)
			}
			err := o.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !o.since.Equal(tt.wantSince) {
				t.Fatalf("err = %v, since = %s, want %s", err, o.since, tt.wantSince)
			}
			wantChunk := cmp.Or(tt.wantChunk, 500)
			if len(o.selections) != 1 || o.selections[0].Scope.ChunkSize != wantChunk {
				t.Fatalf("selections %+v, want one with chunk size %d", o.selections, wantChunk)
			}
		})
	}
}

// validOptions are the options of a command line, completed and validated.
func validOptions(t *testing.T, args []string) *Options {
	t.Helper()
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	o := NewOptions(streams)
	c := newCmd(o)
	if err := c.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := o.Complete(c, nil); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	return o
}

// An export to a bucket commits a segment at a time, which its log holds in memory until it is
// put; a directory takes the export's default, which syncs less often.
func TestExportOptions(t *testing.T) {
	tests := []struct {
		args            []string
		wantCommitBytes int64
		wantTimestamps  bool
	}{
		{[]string{"-d", "logs"}, 0, false},
		{[]string{"-d", "logs", "--timestamps"}, 0, true},
		{[]string{"-d", "s3://team-logs/prod"}, bucket.SegmentBytes, false},
		{[]string{"-d", "s3://team-logs/prod", "-f", "--timestamps"}, bucket.SegmentBytes, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o := validOptions(t, tt.args)
			opts := o.exportOptions()
			if opts.CommitBytes != tt.wantCommitBytes || opts.Timestamps != tt.wantTimestamps {
				t.Fatalf("commit bytes %d, timestamps %v; want %d, %v", opts.CommitBytes, opts.Timestamps, tt.wantCommitBytes, tt.wantTimestamps)
			}
		})
	}
}

// Following opens a stream for every container unless --max-log-requests says otherwise; a
// one-shot run keeps its 10 requests at once.
func TestFollowStreams(t *testing.T) {
	tests := []struct {
		args         []string
		wantRequests int // what a one-shot run uses
		wantStreams  int // the follower's bound, 0 for none
	}{
		{nil, 10, 0},
		{[]string{"-f"}, 10, 0},
		{[]string{"-f", "--max-log-requests", "50"}, 50, 50},
		{[]string{"-f", "--max-log-requests", "10"}, 10, 10},
		{[]string{"--max-log-requests", "3"}, 3, 3},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o := validOptions(t, tt.args)
			if o.MaxLogRequests != tt.wantRequests || o.followStreams() != tt.wantStreams {
				t.Fatalf("requests %d, streams %d; want %d, %d", o.MaxLogRequests, o.followStreams(), tt.wantRequests, tt.wantStreams)
			}
		})
	}
}

func TestDryRunPrintsTargetsSorted(t *testing.T) {
	mk := func(ns, name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	}
	streams, _, out, _ := genericiooptions.NewTestIOStreams()
	o := NewOptions(streams)
	o.client = fake.NewClientset(mk("b", "redis-0"), mk("a", "redis-1"), mk("a", "web"))
	o.AllNamespaces, o.DryRun, o.Patterns, o.Dir = true, true, []string{"redis"}, "out"
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := o.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"NAMESPACE   POD       CONTAINER   FILE",
		"a           redis-1   app         " + filepath.Join("out", "a", "redis-1", "app.log"),
		"b           redis-0   app         " + filepath.Join("out", "b", "redis-0", "app.log"),
	}
	if got := strings.TrimRight(out.String(), "\n"); got != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestSummaryStatuses(t *testing.T) {
	results := []export.Result{
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "ok"}, Lines: 2, Bytes: 10},
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "idle"}},
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "gap"}, Lines: 1, Gaps: []export.Gap{{Reason: "r"}}},
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "bad"}, Err: context.Canceled},
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "new"}, Skipped: "not started"},
		// Terminated and stored to its end: not requested, and listed all the same.
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "done"}, File: "out/a/p/done.log", Complete: true},
	}
	s := newSummary(results, nil)
	if c := s.only(summaryChanged); len(c.Containers) != 4 || c.Selected != 6 {
		t.Errorf("--summary=changed: %d rows of %d, want 4 of 6 (ok, gap, bad, new; not idle or done)", len(c.Containers), c.Selected)
	}
	var got []string
	for _, c := range s.Containers {
		got = append(got, c.Container+"="+c.Status)
	}
	if strings.Join(got, " ") != "ok=ok idle=up to date gap=gap bad=failed new=not started done=up to date" || s.Selected != 6 || s.Failed != 1 || s.Lines != 3 || s.Gaps != 1 {
		t.Fatalf("got %v %+v", got, s)
	}
}
