package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/logexport/kubectl-logexport/pkg/cmd"
	"github.com/logexport/kubectl-logexport/test/kwok"
)

const criLayout = "2006-01-02T15:04:05.000000000Z07:00"

func randID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// newNamespace creates a namespace for one test, removed when it ends.
func newNamespace(t *testing.T) string {
	t.Helper()
	base := nonName.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	name := strings.Trim(base, "-") + "-" + randID()
	_, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// The controller-manager makes this one too, but may be between leader leases right after an
	// API server restart: pods must not wait for it.
	_, err = client.CoreV1().ServiceAccounts(name).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating the default service account: %v", err)
	}
	return name
}

// criLog is a container log file in the CRI format, served by kwok.
type criLog struct {
	t    *testing.T
	path string
}

func newLog(t *testing.T) *criLog {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "0.log")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return &criLog{t: t, path: p}
}

// add appends one full line per text, all with timestamp ts.
func (l *criLog) add(ts time.Time, texts ...string) *criLog {
	var b strings.Builder
	for _, s := range texts {
		fmt.Fprintf(&b, "%s stdout F %s\n", ts.UTC().Format(criLayout), s)
	}
	return l.raw(b.String())
}

// raw appends entries as they are.
func (l *criLog) raw(s string) *criLog {
	l.t.Helper()
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		l.t.Fatal(err)
	}
	return l
}

// replace rewrites the file with new content, as a rotation by the kubelet would.
func (l *criLog) replace(s string) {
	l.t.Helper()
	if err := os.WriteFile(l.path, []byte(s), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

type container struct {
	name string
	init bool
	log  *criLog
}

type pod struct {
	name       string
	labels     map[string]string
	containers []container
	node       string // kwok.Node when empty
}

var t0 = time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)

// at returns t0 plus seconds and nanoseconds.
func at(sec, nsec int) time.Time { return t0.Add(time.Duration(sec)*time.Second + time.Duration(nsec)) }

// createPod creates a pod on a kwok node whose containers log from the given files, waits until
// it runs with a kubelet-like status (container IDs set) and kwok serves its logs.
func createPod(t *testing.T, ns string, p pod) {
	t.Helper()
	ctx := context.Background()
	spec := kwok.PodSpec()
	if p.node != "" {
		spec.NodeName = p.node
	}
	for _, c := range p.containers {
		ct := corev1.Container{Name: c.name, Image: "fake"}
		if c.init {
			spec.InitContainers = append(spec.InitContainers, ct)
		} else {
			spec.Containers = append(spec.Containers, ct)
		}
	}
	applyLogs(t, ns, p.name, p.containers, nil)
	_, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: ns, Labels: p.labels}, Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().Pods(ns).Get(ctx, p.name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Status.Phase == corev1.PodRunning && len(got.Status.ContainerStatuses) == len(got.Spec.Containers), nil
	})
	if err != nil {
		t.Fatalf("waiting for pod %s/%s to run: %v", ns, p.name, err)
	}
	updateStatus(t, ns, p.name, kwok.SetContainerIDs)
	for _, c := range p.containers {
		waitServed(t, ns, p.name, c.name, false)
	}
}

// applyLogs points kwok at the log files of a pod's containers (and at previous ones, if given).
func applyLogs(t *testing.T, ns, podName string, cs []container, previous map[string]*criLog) {
	t.Helper()
	var files []kwok.LogFiles
	for _, c := range cs {
		f := kwok.LogFiles{Container: c.name, Current: c.log.path}
		if prev := previous[c.name]; prev != nil {
			f.Previous = prev.path
		}
		files = append(files, f)
	}
	if err := kwok.ApplyLogs(context.Background(), dyn, ns, podName, files); err != nil {
		t.Fatal(err)
	}
}

func updateStatus(t *testing.T, ns, name string, mutate func(*corev1.PodStatus)) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(&got.Status)
		_, err = client.CoreV1().Pods(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("updating status of %s/%s: %v", ns, name, err)
	}
}

// waitServed waits until the API serves a container's log (or its previous instance's).
func waitServed(t *testing.T, ns, podName, c string, previous bool) {
	t.Helper()
	if err := kwok.WaitServed(context.Background(), client, ns, podName, c, previous); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// restart makes a container restart the way a kubelet reports it: the running instance becomes
// lastState.terminated (served with previous=true from its old file), a new one starts with a new
// container ID and logs into next.
func restart(t *testing.T, ns, podName string, cs []container, c string, next *criLog) []container {
	t.Helper()
	prev := map[string]*criLog{}
	out := append([]container(nil), cs...)
	for i := range out {
		if out[i].name == c {
			prev[c] = out[i].log
			out[i].log = next
		}
	}
	applyLogs(t, ns, podName, out, prev)
	now := metav1.Now()
	updateStatus(t, ns, podName, func(st *corev1.PodStatus) {
		for i := range st.ContainerStatuses {
			s := &st.ContainerStatuses[i]
			if s.Name != c {
				continue
			}
			s.LastTerminationState = terminated(s, now, 1, "Error")
			s.ContainerID = kwok.ContainerID()
			s.RestartCount++
			s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now.Add(time.Second))}}
		}
	})
	// kwok serves the new files once it has seen the new Logs object.
	waitServed(t, ns, podName, c, true)
	return out
}

// terminated is the state a kubelet reports for a container's running instance once it ended.
func terminated(s *corev1.ContainerStatus, now metav1.Time, code int32, reason string) corev1.ContainerState {
	started := metav1.NewTime(now.Add(-time.Minute))
	if s.State.Running != nil {
		started = s.State.Running.StartedAt
	}
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, StartedAt: started, FinishedAt: now, ContainerID: s.ContainerID,
	}}
}

func deletePod(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	err := client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	if err != nil {
		t.Fatalf("deleting pod: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s not gone: %v", ns, name, err)
	}
}

// kubectl runs the real kubectl against the test cluster.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	c := exec.Command("kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	c.Stdin = strings.NewReader(stdin)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type runResult struct {
	stdout, stderr string
	code           int
}

// pluginCmd returns `kubectl logexport ARGS` with the built plugin on PATH.
func pluginCmd(env []string, args ...string) *exec.Cmd {
	c := exec.Command("kubectl", append([]string{"logexport"}, args...)...)
	c.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+kubeconfig)
	c.Env = append(c.Env, env...)
	return c
}

func logexportEnv(t *testing.T, env []string, args ...string) runResult {
	t.Helper()
	c := pluginCmd(env, args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	res := runResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running kubectl logexport: %v", err)
	}
	t.Logf("kubectl logexport %s: exit %d\nstderr: %s", strings.Join(args, " "), res.code, res.stderr)
	return res
}

func logexport(t *testing.T, args ...string) runResult {
	t.Helper()
	return logexportEnv(t, nil, args...)
}

// export runs kubectl logexport -o json, expecting success, and returns the summary.
func export(t *testing.T, args ...string) cmd.Summary {
	t.Helper()
	res := logexport(t, append(args, "-o", "json")...)
	if res.code != 0 {
		t.Fatalf("kubectl logexport failed with exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	return decode(t, res.stdout)
}

func decode(t *testing.T, s string) cmd.Summary {
	t.Helper()
	var sum cmd.Summary
	if err := json.Unmarshal([]byte(s), &sum); err != nil {
		t.Fatalf("decoding summary: %v\n%s", err, s)
	}
	return sum
}

func find(t *testing.T, s cmd.Summary, ns, podName, c string) cmd.ContainerSummary {
	t.Helper()
	for _, cs := range s.Containers {
		if cs.Namespace == ns && cs.Pod == podName && cs.Container == c {
			return cs
		}
	}
	t.Fatalf("no %s/%s/%s in summary %+v", ns, podName, c, s)
	return cmd.ContainerSummary{}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading export: %v", err)
	}
	return string(b)
}

// readFileOrEmpty is readFile, or "" for a file that does not exist.
func readFileOrEmpty(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return readFile(t, path)
}

// lines joins texts as a stored log holds them.
func lines(texts ...string) string {
	if len(texts) == 0 {
		return ""
	}
	return strings.Join(texts, "\n") + "\n"
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func assertFile(t *testing.T, path, want string) {
	t.Helper()
	got := readFile(t, path)
	if got != want {
		t.Fatalf("%s:\n got %d bytes: %q\nwant %d bytes: %q", path, len(got), clip(got), len(want), clip(want))
	}
}

func clip(s string) string {
	if len(s) > 600 {
		return s[:300] + " ... " + s[len(s)-300:]
	}
	return s
}

// checkpointFile is the file holding the checkpoints of a namespace's logs.
func checkpointFile(dir, ns string) string {
	return filepath.Join(dir, ".logexport", "checkpoints", ns+".jsonl")
}

// checkpointLine is the last line saved for a container in its namespace's checkpoint file, which
// is the one in force; "" if there is none.
func checkpointLine(t *testing.T, dir, ns, podName, c string) string {
	t.Helper()
	var last string
	for _, line := range strings.Split(strings.TrimSuffix(readFile(t, checkpointFile(dir, ns)), "\n"), "\n") {
		var key struct{ Pod, Container string }
		if err := json.Unmarshal([]byte(line), &key); err != nil {
			t.Fatalf("checkpoint line %q: %v", line, err)
		}
		if key.Pod == podName && key.Container == c {
			last = line
		}
	}
	return last
}
