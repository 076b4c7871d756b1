package cmd

// Adversarial tests of what issue 11 promises: --config, --summary, --dry-run, the no-match
// messages, status, the journal and gap records, and the follower's probes. Tests that found a
// break are skipped unless BREAK_HABITS is set.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/logexport/kubectl-logexport/pkg/config"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

func bhBroken(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("BREAK_HABITS") == "" {
		t.Skip("fails: " + why + "; run with BREAK_HABITS=1")
	}
}

// bhRun runs the real command (as the model test does) and returns stdout, stderr and its error.
func bhRun(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	c := NewCmd(streams)
	c.SetArgs(args)
	err := c.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func bhStatus(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	c := newStatusCmd(streams)
	c.SetArgs(args)
	err := c.Execute()
	return out.String(), errOut.String(), err
}

func bhWriteConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func bhLines(srv *logserver.Server, ns, pod, c, prefix string, n int) {
	now := time.Now()
	var es []logserver.Entry
	for i := range n {
		es = append(es, logserver.Entry{Time: now.Add(time.Duration(i) * time.Millisecond), Text: fmt.Sprintf("%s %d", prefix, i)})
	}
	srv.Append(ns, pod, c, es...)
}

func bhRead(t *testing.T, dir, ns, pod, c string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ns, pod, c+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// --- --config ---

// A type error in the second selection must name selections[1], as the README's example does for
// a bad pattern: the decoder's own field path drops the index.
func TestBreakHabitsConfigTypeErrorNamesIndex(t *testing.T) {
	_, err := config.Parse("x.yaml", []byte("apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- namespace: a\n- namespace: b\n  pods: redis\n"))
	if err == nil {
		t.Fatal("a string for pods was accepted")
	}
	if !strings.HasPrefix(err.Error(), "x.yaml: ") || !strings.Contains(err.Error(), "selections[1].pods") {
		t.Fatalf("error %q does not name x.yaml and selections[1].pods", err)
	}
}

// The same with a bad element type deeper in a list.
func TestBreakHabitsConfigTypeErrorInListNamesIndex(t *testing.T) {
	_, err := config.Parse("x.yaml", []byte("apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- namespace: a\n- namespace: b\n  allNamespaces: yes please\n"))
	if err == nil {
		t.Fatal("a string for allNamespaces was accepted")
	}
	if !strings.Contains(err.Error(), "selections[1].allNamespaces") {
		t.Fatalf("error %q does not name selections[1].allNamespaces", err)
	}
}

// Strict decoding: a second YAML document (--- then more selections) is silently dropped, so the
// selections it holds are never exported and nothing says so.
func TestBreakHabitsConfigSecondDocumentDropped(t *testing.T) {
	c, err := config.Parse("x.yaml", []byte("apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- namespace: a\n---\napiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- namespace: b\n"))
	if err == nil {
		t.Fatalf("two documents accepted: %d selections", len(c.Selections))
	}
}

// Strict decoding: unknown, repeated, wrongly cased fields and a bad version are refused with
// the file and the field.
func TestBreakHabitsConfigStrict(t *testing.T) {
	head := "apiVersion: logexport/v1alpha1\nkind: Config\n"
	for _, tc := range []struct{ body, want string }{
		{head + "selections:\n- namespace: a\n  pod: [x]\n", "selections[0].pod"},
		{head + "selections:\n- namespace: a\n  Pods: [x]\n", "selections[0].Pods"},
		{head + "selections:\n- namespace: a\n  pods: [x]\n  pods: [y]\n", "pods"},
		{"apiVersion: logexport/v1\nkind: Config\nselections:\n- namespace: a\n", "apiVersion"},
		{head + "selections:\n- namespace: a\n- namespace: b\n  pods: [\"(\"]\n", "selections[1].pods[0]"},
		{head + "selections:\n- namespace: a\n- labelSelector: \"a in (\"\n", "selections[1].labelSelector"},
		{head + "selections:\n- namespace: Shop\n", "selections[0].namespace"},
		{head + "selections: []\n", "selections"},
	} {
		_, err := config.Parse("x.yaml", []byte(tc.body))
		if err == nil || !strings.HasPrefix(err.Error(), "x.yaml: ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line with x.yaml and %s", tc.body, err, tc.want)
		}
	}
}

// Several selections that select the same container export it once; flags narrow them.
func TestBreakHabitsConfigOverlapExportedOnce(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "redis-0", "redis")
	srv.AddPod("shop", "cart-1", "app", "side")
	srv.AddPod("shop", "cart-canary", "app")
	bhLines(srv, "default", "redis-0", "redis", "r", 5)
	bhLines(srv, "shop", "cart-1", "app", "a", 7)
	bhLines(srv, "shop", "cart-canary", "app", "c", 3)
	cfg := bhWriteConfig(t, `apiVersion: logexport/v1alpha1
kind: Config
selections:
- namespace: default
  pods: [redis]
- namespace: default
  pods: [red, "0$"]
- allNamespaces: true
  pods: [redis, cart]
- namespace: shop
  pods: [cart]
  excludePods: [cart-canary]
`)
	dir := t.TempDir()
	out, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "--config", cfg, "-d", dir, "-o", "json")
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	var s Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	seen := map[string]int{}
	for _, c := range s.Containers {
		seen[c.Namespace+"/"+c.Pod+"/"+c.Container]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", k, n)
		}
	}
	// allNamespaces pods [cart] selects the canary too: the union, not the narrowest.
	if s.Selected != 4 || s.Lines != 5+7+3 {
		t.Errorf("selected %d lines %d, want 4 and 15: %s", s.Selected, s.Lines, out)
	}
	if got := bhRead(t, dir, "default", "redis-0", "redis"); len(got) != 5 {
		t.Errorf("redis log has %d lines: %q", len(got), got)
	}
	// The flags narrow every selection: -n shop -p canary keeps only the canary, -c app its app.
	out, errOut, err = bhRun(t, context.Background(), "--kubeconfig", kc, "--config", cfg, "-n", "shop", "-p", "cart", "-c", "app", "--dry-run=client", "-d", dir)
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 3 || strings.Contains(out, "side") || strings.Contains(out, "redis") {
		t.Errorf("-n shop -p cart -c app: %q", out)
	}
	// -l joins each selection's own: app=cart-1 leaves only cart-1.
	out, errOut, err = bhRun(t, context.Background(), "--kubeconfig", kc, "--config", cfg, "-l", "app=cart-1", "--dry-run", "-d", dir)
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	if strings.Contains(out, "canary") || strings.Contains(out, "redis") || !strings.Contains(out, "cart-1") {
		t.Errorf("-l app=cart-1: %q", out)
	}
	// -A is refused with --config.
	if _, _, err := bhRun(t, context.Background(), "--kubeconfig", kc, "--config", cfg, "-A", "-d", dir); err == nil {
		t.Error("-A with --config accepted")
	}
	// -n of a namespace the file does not name: refused, not everything.
	if _, _, err := bhRun(t, context.Background(), "--kubeconfig", kc, "--config", bhWriteConfig(t, "apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- namespace: default\n"), "-n", "shop", "-d", dir); err == nil {
		t.Error("-n shop with a file for default only accepted")
	}
}

// A follower with overlapping selections stores each line once, and a pod that one selection
// stops selecting (an excludePods of another does not matter) is still followed.
func TestBreakHabitsConfigFollowOverlap(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "redis-0", "redis")
	bhLines(srv, "default", "redis-0", "redis", "before", 4)
	cfg := bhWriteConfig(t, `apiVersion: logexport/v1alpha1
kind: Config
selections:
- namespace: default
  pods: [redis]
- namespace: default
  pods: [red]
- allNamespaces: true
  pods: [redis]
  excludePods: [redis-0]
`)
	dir := t.TempDir()
	addr := bhFreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var ferr error
	var fout, ferrOut string
	go func() {
		defer close(done)
		fout, ferrOut, ferr = bhRun(t, ctx, "--kubeconfig", kc, "--config", cfg, "-d", dir, "-f", "-o", "json", "--metrics-bind-address", addr)
	}()
	time.Sleep(2 * time.Second)
	bhLines(srv, "default", "redis-0", "redis", "during", 6)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "default", "redis-0", "redis.log"))
		if bytes.Count(b, []byte("\n")) >= 10 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a duplicate would land by now
	_, m := bhGet("http://" + addr + "/metrics")
	// Not "== 10": the counter lags behind a quiet container (TestBreakHabitsMetricsCatchUp); it
	// must not count a container twice.
	var stored int
	for _, l := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(l, `logexport_stored_lines_total{namespace="default"} `); ok {
			_, _ = fmt.Sscan(v, &stored)
		}
	}
	if stored > 10 || !strings.Contains(m, "logexport_containers_followed 1") || !strings.Contains(m, "logexport_streams_open 1") {
		var lines []string
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, "logexport_stored_lines") || strings.HasPrefix(l, "logexport_containers_followed") || strings.HasPrefix(l, "logexport_streams_open") {
				lines = append(lines, l)
			}
		}
		t.Errorf("metrics with overlapping selections: %q", lines)
	}
	cancel()
	<-done
	if ferr != nil {
		t.Fatalf("follower: %v: %s", ferr, ferrOut)
	}
	got := bhRead(t, dir, "default", "redis-0", "redis")
	if len(got) != 10 {
		t.Fatalf("stored %d lines, want 10 once each: %q\nsummary: %s", len(got), got, fout)
	}
	var s Summary
	if err := json.Unmarshal([]byte(fout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Selected != 1 || s.Lines != 10 {
		t.Errorf("follower summary: %s", fout)
	}
}

// --- no match, missing namespace ---

func TestBreakHabitsNoMatchRealServer(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("shop", "cart-1", "app")
	dir := t.TempDir()
	// A typo: exit 1, said as kubectl says it, and recorded in the journal as a failed run.
	_, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-n", "shpo", "-d", dir)
	if err == nil || err.Error() != "namespace shpo does not exist" {
		t.Fatalf("-n shpo: %v (stderr %q)", err, errOut)
	}
	if _, _, err := bhStatus(t, "-d", dir); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("status after the typo run: %v", err)
	}
	// Nothing matched in a namespace that exists: exit 0, the message, no header.
	out, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-n", "shop", "-p", "web", "-d", dir)
	if err != nil || out != "" || !strings.HasPrefix(errOut, "No pods matched in namespace shop.\n") {
		t.Errorf("-n shop -p web: err %v stdout %q stderr %q", err, out, errOut)
	}
	// A namespace that exists and has pods, but none of them now: default (created by the server).
	out, errOut, err = bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir, "-o", "json")
	if err != nil || !strings.HasPrefix(errOut, "No pods matched in namespace default.\n") {
		t.Errorf("default: err %v stdout %q stderr %q", err, out, errOut)
	}
	// With a config, a missing namespace among found ones: the rest exported, exit 1.
	cfg := bhWriteConfig(t, "apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- namespace: shop\n- namespace: shpo\n")
	_, errOut, err = bhRun(t, context.Background(), "--kubeconfig", kc, "--config", cfg, "-d", dir)
	if err == nil || !strings.Contains(errOut, "shpo") {
		t.Errorf("config with shpo: err %v stderr %q", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "shop", "cart-1", "app.log")); err != nil {
		t.Errorf("the rest was not exported: %v", err)
	}
}

// --- --dry-run ---

func TestBreakHabitsDryRunWritesNothing(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "redis-0", "redis")
	bhLines(srv, "default", "redis-0", "redis", "r", 3)
	for _, args := range [][]string{{"--dry-run"}, {"--dry-run=client"}, {"--dry-run=true"}, {"--dry-run", "redis"}} {
		dir := filepath.Join(t.TempDir(), "logs")
		out, errOut, err := bhRun(t, context.Background(), append([]string{"--kubeconfig", kc, "-d", dir}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v %s", args, err, errOut)
		}
		if !strings.Contains(out, "redis-0") {
			t.Errorf("%v: stdout %q", args, out)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%v: the dry run created %s", args, dir)
		}
	}
	for _, args := range [][]string{{"--dry-run=server"}, {"--dry-run=Client"}, {"--dry-run="}} {
		dir := filepath.Join(t.TempDir(), "logs")
		if _, _, err := bhRun(t, context.Background(), append([]string{"--kubeconfig", kc, "-d", dir}, args...)...); err == nil {
			t.Errorf("%v accepted", args)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%v: created %s", args, dir)
		}
	}
	dir := filepath.Join(t.TempDir(), "logs")
	if _, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir, "--dry-run=none"); err != nil {
		t.Fatalf("--dry-run=none: %v %s", err, errOut)
	}
	if got := bhRead(t, dir, "default", "redis-0", "redis"); len(got) != 3 {
		t.Errorf("--dry-run=none stored %q", got)
	}
	// The dry run of a follower writes nothing either, and returns.
	dir = filepath.Join(t.TempDir(), "logs")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, errOut, err := bhRun(t, ctx, "--kubeconfig", kc, "-d", dir, "-f", "--dry-run=client"); err != nil || ctx.Err() != nil {
		t.Errorf("-f --dry-run: %v %s (ctx %v)", err, errOut, ctx.Err())
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("-f --dry-run created %s", dir)
	}
}

// --dry-run -o json: the README's -o json is the machine-readable output; a dry run ignores it.
func TestBreakHabitsDryRunJSON(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "redis-0", "redis")
	out, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-d", t.TempDir(), "--dry-run", "-o", "json")
	if err != nil {
		t.Fatalf("%v %s", err, errOut)
	}
	if !json.Valid([]byte(out)) {
		bhBroken(t, "--dry-run -o json prints the table, not JSON: "+strings.TrimSpace(out))
		t.Fatalf("--dry-run -o json printed %q", out)
	}
}

// --- --summary ---

// A run from cron with --summary=changed: the second run, with nothing new, prints no table; a
// container that got lines shows; the totals line counts every container.
func TestBreakHabitsSummaryChangedRealRuns(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	for i := range 5 {
		srv.AddPod("default", fmt.Sprintf("p-%d", i), "c")
		bhLines(srv, "default", fmt.Sprintf("p-%d", i), "c", "x", 2)
	}
	dir := t.TempDir()
	if _, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir, "--summary=changed"); err != nil {
		t.Fatal(err, errOut)
	}
	out, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir, "--summary=changed")
	if err != nil || out != "" || !strings.Contains(errOut, "exported 0 lines (0 bytes) from 5 containers") {
		t.Errorf("second run: err %v stdout %q stderr %q", err, out, errOut)
	}
	bhLines(srv, "default", "p-3", "c", "y", 1)
	out, errOut, err = bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir, "--summary=changed", "-o", "json")
	if err != nil {
		t.Fatal(err, errOut)
	}
	var s Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Containers) != 1 || s.Containers[0].Pod != "p-3" || s.Selected != 5 || s.Lines != 1 {
		t.Errorf("third run: %s", out)
	}
	out, _, err = bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir, "--summary=none", "-o", "json")
	if err != nil || !strings.Contains(out, `"containers": []`) || !strings.Contains(out, `"selected": 5`) {
		t.Errorf("--summary=none -o json: %v %s", err, out)
	}
	if _, _, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir, "--summary=Changed"); err == nil {
		t.Error("--summary=Changed accepted")
	}
}

// A container whose export failed is never hidden by --summary=changed, even with no lines: the
// pod is deleted between the list and its log request.
func TestBreakHabitsSummaryChangedFailureShown(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "a", "c")
	srv.AddPod("default", "b", "c")
	bhLines(srv, "default", "a", "c", "x", 2)
	bhLines(srv, "default", "b", "c", "x", 2)
	dir := t.TempDir()
	// A first run stores a and b; then b is written to and deleted when its log is asked for.
	if _, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir); err != nil {
		t.Fatal(err, errOut)
	}
	bhLines(srv, "default", "b", "c", "y", 2)
	srv.OnLogRequest(func(_, pod string, _ *corev1.PodLogOptions) {
		if pod == "b" {
			go srv.Delete("default", "b")
			time.Sleep(100 * time.Millisecond)
		}
	})
	defer srv.OnLogRequest(nil)
	out, errOut, _ := bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir, "--summary=changed", "-o", "json")
	var s Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err, out)
	}
	t.Logf("summary %s stderr %s", out, errOut)
	for _, c := range s.Containers {
		if c.Status == statusUpToDate && c.Lines == 0 {
			t.Errorf("an unchanged row listed: %+v", c)
		}
	}
	if (s.Failed > 0 || s.Gaps > 0) && len(s.Containers) == 0 {
		t.Errorf("a failure or gap hidden: %s", out)
	}
}

// --- status, journal, gaps ---

// A run killed mid-way (after a commit with a gap, before its end) shows as unfinished with its
// gap (exit 1), as killed once another run started, and its gap stays listed after a clean run.
func TestBreakHabitsStatusKilledRunGapSurvives(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	runInto(t, dir, t0, nil, nil)

	// The killed run: a start, a commit with a gap, no end.
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	o := NewOptions(streams)
	o.now = func() time.Time { return t0.Add(time.Hour) }
	o.Dir = dir
	d, err := o.openRun(context.Background(), "once")
	if err != nil {
		t.Fatal(err)
	}
	killedID := o.journal.run.ID
	l, err := d.Append("shop", "redis-0", "redis")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("more\n")); err != nil {
		t.Fatal(err)
	}
	l.EndLine()
	to := t0.Add(90 * time.Minute)
	l.AddGaps(store.Gap{From: t0.Add(80 * time.Minute), To: &to, Reason: "rotated away"})
	cp := *l.Checkpoint()
	cp.Lines++
	if err := l.Commit(cp); err != nil {
		t.Fatal(err)
	}
	// Status while it still holds the directory (as beside a follower): no lock needed.
	_, errOut, err := bhStatus(t, "-d", dir)
	if err == nil || !strings.Contains(err.Error(), killedID) {
		t.Errorf("status beside the running run with a gap: %v (stderr %q)", err, errOut)
	}
	_ = l.Close()
	_ = d.Close() // the lock goes with the process; no end line

	_, _, err = bhStatus(t, "-d", dir)
	if err == nil {
		t.Errorf("status after a killed run that found a gap: exit 0")
	}
	cleanID := runInto(t, dir, t0.Add(2*time.Hour), nil, nil)
	out, errOut, err := bhStatus(t, "-d", dir, "-o", "json")
	if err != nil {
		t.Errorf("a clean run after the killed one: %v", err)
	}
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err, out)
	}
	var gaps []store.Gap
	for _, lg := range st.Logs {
		gaps = append(gaps, lg.Gaps...)
	}
	if len(gaps) != 1 || gaps[0].Run != killedID {
		t.Errorf("gaps %+v, want the killed run's one", gaps)
	}
	states := map[string]string{}
	for _, r := range st.Runs {
		states[r.ID] = r.State
	}
	if states[killedID] != store.RunKilled || states[cleanID] != store.RunEnded || len(st.Runs) != 3 {
		t.Errorf("runs %+v", states)
	}
	if errOut != "" {
		t.Errorf("stderr %q", errOut)
	}
	table, _, _ := bhStatus(t, "-d", dir)
	if !strings.Contains(table, "rotated away") || !strings.Contains(table, killedID) {
		t.Errorf("table lacks the gap:\n%s", table)
	}
}

// A run killed in the middle of appending its journal line leaves a torn line; status reads past
// it without a warning, and the next run's lines are not glued to it.
func TestBreakHabitsStatusTornJournal(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	first := runInto(t, dir, t0, nil, nil)
	jp := filepath.Join(dir, ".logexport", "journal.jsonl")
	f, err := os.OpenFile(jp, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":"20250101T110000Z-deadbeef","event":"start","mo`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A reader now: the torn line is a line being appended, not read yet.
	if _, errOut, err := bhStatus(t, "-d", dir); err != nil || errOut != "" {
		t.Errorf("status with a torn last line: %v %q", err, errOut)
	}
	second := runInto(t, dir, t0.Add(time.Hour), nil, nil)
	out, errOut, err := bhStatus(t, "-d", dir, "-o", "json")
	if err != nil || errOut != "" {
		t.Errorf("status: %v %q", err, errOut)
	}
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 2 || st.Runs[0].ID != first || st.Runs[1].ID != second || st.Runs[1].State != store.RunEnded {
		t.Errorf("runs %+v", st.Runs)
	}
	// NUL debris (a crash on XFS) in the last line: the same.
	f, _ = os.OpenFile(jp, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.Write([]byte("\x00\x00\x00\x00\n"))
	f.Close()
	if _, errOut, err := bhStatus(t, "-d", dir); err != nil || errOut != "" {
		t.Errorf("status with NUL debris: %v %q", err, errOut)
	}
	runInto(t, dir, t0.Add(2*time.Hour), nil, nil)
	out, _, err = bhStatus(t, "-d", dir, "-o", "json")
	if err != nil {
		t.Error(err)
	}
	st = Status{}
	_ = json.Unmarshal([]byte(out), &st)
	if len(st.Runs) != 3 {
		t.Errorf("after NUL debris: %d runs", len(st.Runs))
	}
}

// status -o json: the problem is in the JSON and the exit code; a gap found by a run whose end
// says no gaps (an older run's records) is still that run's.
func TestBreakHabitsStatusJSONProblem(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	to := t0.Add(time.Minute)
	id := runInto(t, dir, t0, []store.Gap{{From: t0, To: &to, Reason: "r"}}, nil)
	out, _, err := bhStatus(t, "-d", dir, "-o", "json")
	if err == nil {
		t.Fatal("exit 0 after a gap")
	}
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Problem, id) || st.Problem != err.Error() {
		t.Errorf("problem %q, err %v", st.Problem, err)
	}
	if _, _, err := bhStatus(t, "-d", filepath.Join(dir, "nope")); err == nil {
		t.Error("status of a missing directory: exit 0")
	}
	if _, _, err := bhStatus(t, "-d", dir, "--runs", "0"); err == nil {
		t.Error("--runs 0 hid the problem")
	}
}

// Retention of the journal never drops the record of the last failing run while its gap is kept.
func TestBreakHabitsStatusGapWithoutItsRun(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-48 * time.Hour).UTC()
	to := t0.Add(time.Minute)
	runInto(t, dir, t0, []store.Gap{{From: t0, To: &to, Reason: "r"}}, nil)
	d, err := store.Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.TrimJournal(time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	_ = d.Close()
	out, _, err := bhStatus(t, "-d", dir)
	if !strings.Contains(out, "GAP FROM") {
		t.Errorf("the gap is no longer listed once its run was trimmed:\n%s", out)
	}
	_ = err
}

// --- metrics and probes ---

func bhFreeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func bhGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBreakHabitsProbes(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "redis-0", "redis")
	bhLines(srv, "default", "redis-0", "redis", "r", 3)
	dir := t.TempDir()
	addr := bhFreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := bhRun(t, ctx, "--kubeconfig", kc, "-d", dir, "-f", "--metrics-bind-address", addr)
		done <- err
	}()
	base := "http://" + addr
	var code int
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if code, body = bhGet(base + "/readyz"); code == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 200 || body != "ok" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, body := bhGet(base + "/healthz"); code != 200 || body != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, m := bhGet(base + "/metrics"); strings.Contains(m, `logexport_stored_lines_total{namespace="default"} 3`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, m := bhGet(base + "/metrics"); !strings.Contains(m, `logexport_stored_lines_total{namespace="default"} 3`) || !strings.Contains(m, "logexport_line_lag_seconds_bucket") {
		t.Errorf("metrics lack the stored lines or the lag histogram")
	}
	// The directory is held: a one-shot run beside it is refused, and status reads it.
	if _, _, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-d", dir); err == nil {
		t.Error("a one-shot run beside the follower was let in")
	}
	if out, errOut, err := bhStatus(t, "-d", dir); err != nil || !strings.Contains(out, "unfinished") {
		t.Errorf("status beside the follower: %v %q\n%s", err, errOut, out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("follower: %v", err)
	}
	if code, _ := bhGet(base + "/readyz"); code == 200 {
		t.Error("/readyz still 200 after the follower ended")
	}
	// A busy address fails the run at once, before the directory is opened.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir2 := filepath.Join(t.TempDir(), "logs")
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if _, _, err := bhRun(t, ctx2, "--kubeconfig", kc, "-d", dir2, "-f", "--metrics-bind-address", l.Addr().String()); err == nil || ctx2.Err() != nil {
		t.Errorf("busy address: %v", err)
	}
	if _, err := os.Stat(dir2); err == nil {
		t.Error("a busy address opened the directory")
	}
}

// --summary=none -o json: the row of a failed container is hidden, and with -o json nothing goes
// to stderr: the error itself (which container, what went wrong) is reported nowhere, though the
// README says every gap and every error is reported whatever --summary hides.
func TestBreakHabitsSummaryNoneJSONHidesError(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "a", "c")
	srv.AddPod("default", "b", "c")
	bhLines(srv, "default", "b", "c", "x", 2)
	srv.OnLogRequest(func(_, pod string, _ *corev1.PodLogOptions) {
		if pod == "b" {
			go srv.Delete("default", "b")
			time.Sleep(100 * time.Millisecond)
		}
	})
	defer srv.OnLogRequest(nil)
	out, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "-d", t.TempDir(), "--summary=none", "-o", "json")
	if err == nil {
		t.Fatalf("the failed container did not fail the run: %s", out)
	}
	if !strings.Contains(out+errOut+err.Error(), `not found`) || !strings.Contains(out+errOut+err.Error(), "default/b") {
		t.Fatalf("stdout %q stderr %q err %v", out, errOut, err)
	}
}

// pods: [~] (a null element) becomes the empty pattern, which matches every pod: a slip widens
// the export silently instead of being refused.
func TestBreakHabitsConfigNullPatternWidens(t *testing.T) {
	c, err := config.Parse("x.yaml", []byte("apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- namespace: a\n  pods: [~]\n  excludePods: [null]\n"))
	if err == nil {
		t.Fatalf("null patterns accepted: %+v", c.Selections[0])
	}
}

// A run that cannot reach the cluster is in the journal, and status fails on it.
func TestBreakHabitsUnreachableRecorded(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := bhRun(t, ctx, "--kubeconfig", kc, "-d", dir, "--request-timeout", "2s"); err == nil {
		t.Fatal("a run without a cluster succeeded")
	}
	out, _, err := bhStatus(t, "-d", dir, "-o", "json")
	if err == nil || !strings.Contains(err.Error(), "failed") {
		t.Errorf("status: %v\n%s", err, out)
	}
}

// -n of a missing namespace narrowing an allNamespaces selection is named as missing.
func TestBreakHabitsConfigAllNamespacesNarrowedToMissing(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("shop", "cart-1", "app")
	cfg := bhWriteConfig(t, "apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- allNamespaces: true\n  pods: [cart]\n")
	_, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "--config", cfg, "-n", "shpo", "-d", t.TempDir())
	if err == nil || err.Error() != "namespace shpo does not exist" {
		t.Errorf("err %v stderr %q", err, errOut)
	}
	out, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "--config", cfg, "-n", "shop", "--dry-run", "-d", t.TempDir())
	if err != nil || !strings.Contains(out, "cart-1") {
		t.Errorf("-n shop: %v %q %q", err, out, errOut)
	}
}

// No rights: pods of a namespace that exists may not be listed: an error, never "No pods
// matched"; namespaces may be listed but not got: a missing one is still named as missing.
func TestBreakHabitsNoMatchRights(t *testing.T) {
	nsRes := schema.GroupResource{Resource: "namespaces"}
	podRes := schema.GroupResource{Resource: "pods"}
	for _, tc := range []struct {
		name      string
		ns        string
		reactors  map[[2]string]schema.GroupResource
		wantErr   string // prefix; "" for none
		wantNoErr bool
	}{
		{name: "pods forbidden", ns: "shop", reactors: map[[2]string]schema.GroupResource{{"list", "pods"}: podRes}, wantErr: "x"},
		{name: "get ns forbidden, list allowed, missing", ns: "shpo", reactors: map[[2]string]schema.GroupResource{{"get", "namespaces"}: nsRes}, wantErr: "namespace shpo does not exist"},
		{name: "get ns forbidden, list allowed, exists", ns: "empty", reactors: map[[2]string]schema.GroupResource{{"get", "namespaces"}: nsRes}, wantNoErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			o := NewOptions(streams)
			c := fake.NewClientset(
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "empty"}},
				&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}})
			for k, gr := range tc.reactors {
				gr := gr
				c.PrependReactor(k[0], k[1], func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(gr, "", fmt.Errorf("RBAC"))
				})
			}
			o.client, o.namespace, o.DryRun, o.Dir = c, tc.ns, true, t.TempDir()
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			err := o.Run(context.Background())
			switch {
			case tc.wantNoErr:
				if err != nil || !strings.HasPrefix(errOut.String(), "No pods matched in namespace "+tc.ns) {
					t.Errorf("err %v stderr %q", err, errOut.String())
				}
			case tc.wantErr == "x":
				if err == nil || strings.Contains(errOut.String(), "No pods matched") {
					t.Errorf("err %v stdout %q stderr %q", err, out.String(), errOut.String())
				}
			default:
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("err %v, want %s (stderr %q)", err, tc.wantErr, errOut.String())
				}
			}
		})
	}
}

// A bad file is refused before anything is written (no directory, no journal), in one-shot and
// follow mode alike, and the error names the file and the field.
func TestBreakHabitsConfigBadWritesNothing(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "redis-0", "redis")
	cfg := bhWriteConfig(t, "apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- namespace: default\n- namespace: shop\n  excludePods: [\"a(\"]\n")
	for _, extra := range [][]string{nil, {"-f"}, {"--dry-run"}} {
		dir := filepath.Join(t.TempDir(), "logs")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := bhRun(t, ctx, append([]string{"--kubeconfig", kc, "--config", cfg, "-d", dir}, extra...)...)
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), cfg+": selections[1].excludePods[0]: Invalid value") {
			t.Errorf("%v: %v", extra, err)
		}
		if _, serr := os.Stat(dir); serr == nil {
			t.Errorf("%v: %s created", extra, dir)
		}
	}
	// A file that does not exist: named.
	if _, _, err := bhRun(t, context.Background(), "--kubeconfig", kc, "--config", "/nonexistent/x.yaml", "-d", t.TempDir()); err == nil || !strings.Contains(err.Error(), "/nonexistent/x.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// -f with a config naming a missing namespace exits 1 before it starts.
func TestBreakHabitsConfigFollowMissingNamespace(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "redis-0", "redis")
	cfg := bhWriteConfig(t, "apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- namespace: default\n- namespace: shpo\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, errOut, err := bhRun(t, ctx, "--kubeconfig", kc, "--config", cfg, "-d", t.TempDir(), "-f")
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "shpo") {
		t.Errorf("err %v ctx %v stderr %q", err, ctx.Err(), errOut)
	}
}

// Lines that arrive while following: logexport_stored_lines_total is counted when the checkpoint
// covering them is saved ("every 2 seconds while lines arrive"), so it must reach what the file
// holds within a few seconds once a container goes quiet.
func TestBreakHabitsMetricsCatchUp(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "redis-0", "redis")
	bhLines(srv, "default", "redis-0", "redis", "before", 4)
	dir := t.TempDir()
	addr := bhFreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = bhRun(t, ctx, "--kubeconfig", kc, "-d", dir, "-f", "--metrics-bind-address", addr)
	}()
	defer func() { cancel(); <-done }()
	for i := 0; i < 100; i++ {
		if code, _ := bhGet("http://" + addr + "/readyz"); code == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	bhLines(srv, "default", "redis-0", "redis", "during", 6)
	start := time.Now()
	var m string
	for time.Since(start) < 12*time.Second {
		_, m = bhGet("http://" + addr + "/metrics")
		if strings.Contains(m, `logexport_stored_lines_total{namespace="default"} 10`) {
			t.Logf("caught up after %s", time.Since(start))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "default", "redis-0", "redis.log"))
	cp, _ := os.ReadFile(filepath.Join(dir, ".logexport", "checkpoints", "default.jsonl"))
	var got []string
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "logexport_stored_lines_total") || strings.HasPrefix(l, "logexport_last_checkpoint") {
			got = append(got, l)
		}
	}
	t.Fatalf("file %d lines, metrics %q, checkpoints %q", bytes.Count(b, []byte("\n")), got, cp)
}

// Two selections of one pod with different container patterns: each selects its container, and
// the follower follows both (a selection must not be taken per pod with the first one's
// container filter).
func TestBreakHabitsConfigContainerUnion(t *testing.T) {
	srv := logserver.New(t)
	kc := srv.Kubeconfig()
	srv.AddPod("default", "redis-0", "a", "b", "c")
	for _, c := range []string{"a", "b", "c"} {
		bhLines(srv, "default", "redis-0", c, c, 2)
	}
	cfg := bhWriteConfig(t, `apiVersion: logexport/v1alpha1
kind: Config
selections:
- namespace: default
  pods: [redis]
  containers: [a]
- namespace: default
  pods: [redis]
  containers: [b]
- allNamespaces: true
  pods: [redis]
  excludeContainers: [a, b, c]
`)
	out, errOut, err := bhRun(t, context.Background(), "--kubeconfig", kc, "--config", cfg, "--dry-run", "-d", t.TempDir())
	if err != nil || !strings.Contains(out, " a ") || !strings.Contains(out, " b ") || strings.Contains(out, " c ") {
		t.Errorf("one-shot: %v %q %q", err, out, errOut)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var fout, ferrOut string
	var ferr error
	go func() {
		defer close(done)
		fout, ferrOut, ferr = bhRun(t, ctx, "--kubeconfig", kc, "--config", cfg, "-d", dir, "-f", "-o", "json")
	}()
	time.Sleep(2 * time.Second)
	for _, c := range []string{"a", "b", "c"} {
		bhLines(srv, "default", "redis-0", c, c+"-more", 3)
	}
	time.Sleep(3 * time.Second)
	cancel()
	<-done
	if ferr != nil {
		t.Fatalf("%v %s", ferr, ferrOut)
	}
	for _, c := range []string{"a", "b"} {
		if got := bhRead(t, dir, "default", "redis-0", c); len(got) != 5 {
			t.Errorf("container %s: %q", c, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "default", "redis-0", "c.log")); err == nil {
		t.Errorf("container c followed: %s", fout)
	}
}
