package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
	"k8s.io/client-go/util/retry"

	"github.com/logexport/kubectl-logexport/test/kwok"
)

// workload is a set of pods on the kwok node, each container logging from a generated CRI file.
type workload struct {
	name       string
	pods       int
	containers int
	logBytes   int64 // size of each container's CRI file
	follow     bool  // its containers log while followers run (workload f)
	// terminated is how many of the pods (the first ones) have finished: their containers
	// terminated after their last line, the pods succeeded, as a finished Job's. Their logs do
	// not grow.
	terminated int
	// only, if set, are the -contenders names the workload runs: (d) and (e) measure the
	// export against the floor, and stern and kubectl logs take 46 times the floor on (b)
	// already (they would add an hour without telling anything new).
	only []string

	namespace string
	selector  string
	files     []*logFile
	// took says how long each step of create took.
	took string
}

// runs tells whether the workload runs contender c (one of contenderFlags' values).
func (w *workload) runs(c string) bool {
	if w.only == nil {
		return true
	}
	for _, name := range w.only {
		// The baseline build runs wherever logexport does.
		if slices.Contains(contenderFlags[name], c) || name == "logexport" && slices.Contains(contenderFlags["baseline"], c) {
			return true
		}
	}
	return false
}

// lines and bytes of what the containers printed, as `kubectl logs` shows it.
func (w *workload) served() (lines, bytes int64) {
	for _, f := range w.files {
		lines += f.lines
		bytes += f.payload
	}
	return lines, bytes
}

func (w *workload) grown() (lines, bytes int64) {
	for _, f := range w.files {
		lines += f.grownLines
		bytes += f.grownPayload
	}
	return lines, bytes
}

// logFile is one container's CRI log. Lines are lineInterval apart, so that many share each second:
// a resume from a second-precision sinceTime re-reads that second and has to skip exactly what it
// stored.
type logFile struct {
	path string
	tag  string
	// start is when its container started, and its first line.
	start   time.Time
	size    int64
	lines   int64
	payload int64
	next    time.Time
	// done: its container terminated; the log does not grow.
	done bool

	grownLines, grownPayload int64
}

var (
	// A busy container's pace: 100 lines a second.
	lineInterval = 10 * time.Millisecond
	// A day ago: stern only asks for the last 48 hours unless told otherwise.
	t0        = time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	criLayout = "2006-01-02T15:04:05.000000000Z07:00"
	filler    = strings.Repeat("lorem ipsum dolor sit amet consectetur ", 4)
)

// repeatEvery: every repeatEvery-th line of a log is logged twice, the same text with the same
// timestamp (two writes within the clock's resolution, or a program that says the same thing
// twice). Every line the API served must be stored, so both are; a merge that drops a line it
// already holds (the original tool's set of lines) loses the second.
const repeatEvery = 200

// entry appends the CRI entry of line seq of the log tagged tag, logged at ts, and returns the
// text the API prints for it (without the newline).
func entry(buf []byte, tag string, seq int64, ts time.Time) (out []byte, msgLen int) {
	buf = ts.AppendFormat(buf, criLayout)
	buf = append(buf, " stdout F "...)
	start := len(buf)
	buf = fmt.Appendf(buf, "%s line %09d GET /api/items 200 %s", tag, seq, filler[:40+int(seq)%40])
	msgLen = len(buf) - start
	return append(buf, '\n'), msgLen
}

// appendLines writes lines to w until at least n bytes of CRI entries were written.
func (f *logFile) appendLines(w io.Writer, n int64) (lines, payload, written int64, err error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var buf []byte
	for written < n {
		seq := f.lines + lines
		var msgLen int
		buf, msgLen = entry(buf[:0], f.tag, seq, f.next)
		times := 1
		if seq%repeatEvery == repeatEvery-1 {
			times = 2
		}
		for range times {
			if _, err = bw.Write(buf); err != nil {
				return lines, payload, written, err
			}
			lines++
			payload += int64(msgLen) + 1
			written += int64(len(buf))
		}
		f.next = f.next.Add(lineInterval)
	}
	return lines, payload, written, bw.Flush()
}

func (f *logFile) create(n int64) error {
	out, err := os.Create(f.path)
	if err != nil {
		return err
	}
	defer out.Close()
	f.next = f.start
	f.lines, f.payload, f.size, err = f.appendLines(out, n)
	if err != nil {
		return err
	}
	return out.Close()
}

// grow appends the given fraction of new lines, as a container would between two runs.
func (f *logFile) grow(fraction float64) error {
	out, err := os.OpenFile(f.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer out.Close()
	save := f.next
	f.grownLines, f.grownPayload, _, err = f.appendLines(out, int64(float64(f.size)*fraction))
	f.next = save
	if err != nil {
		return err
	}
	return out.Close()
}

// shrink takes the file back to what every contender reads.
func (f *logFile) shrink() error { return os.Truncate(f.path, f.size) }

// create makes the namespace, the log files under dir and the pods, and waits until kwok serves
// every container's log with a kubelet-like status.
func (w *workload) create(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, dir string) error {
	w.namespace = "bench-" + w.name
	w.selector = "bench=" + w.name
	_ = client.CoreV1().Namespaces().Delete(ctx, w.namespace, metav1.DeleteOptions{})
	err := wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.namespace}}, metav1.CreateOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", w.namespace, err)
	}
	// The controller-manager makes it too, but pods must not wait for it.
	_, err = client.CoreV1().ServiceAccounts(w.namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the default service account: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, w.name), 0o755); err != nil {
		return err
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(createConcurrency)
	w.files = make([]*logFile, w.pods*w.containers)
	for p := 0; p < w.pods; p++ {
		g.Go(func() error { return w.createPod(gctx, client, dyn, dir, p) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	w.took = fmt.Sprintf("pods and logs created in %s", time.Since(start).Round(time.Second))
	return w.settle(ctx, client)
}

// createConcurrency is how many requests creating a workload sends at once: enough to keep an
// API server on 2 cores busy, not so many that its priority and fairness queues them.
const createConcurrency = 32

func (w *workload) podName(p int) string { return fmt.Sprintf("%s-%04d", w.name, p) }

// started is when pod p and its containers started: the pods of a workload started one after the
// other over an hour, as in a cluster that has run for a while, and each container logs from its
// start on.
func (w *workload) started(p int) time.Time {
	return t0.Add(time.Duration(p) * time.Hour / time.Duration(w.pods)).Truncate(time.Second)
}

func (w *workload) createPod(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, dir string, p int) error {
	name := w.podName(p)
	spec := kwok.PodSpec()
	var logs []kwok.LogFiles
	for c := 0; c < w.containers; c++ {
		cname := fmt.Sprintf("c%d", c)
		// A directory per container, as a kubelet keeps them (/var/log/pods/NS_POD_UID/CONTAINER/0.log):
		// a followed stream watches its file's directory for changes, and would be woken by every
		// other container's lines in a shared one.
		cdir := filepath.Join(dir, w.name, name, cname)
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return err
		}
		f := &logFile{path: filepath.Join(cdir, "0.log"), tag: name + "/" + cname, start: w.started(p), done: p < w.terminated}
		if err := f.create(w.logBytes); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
		w.files[p*w.containers+c] = f
		spec.Containers = append(spec.Containers, corev1.Container{Name: cname, Image: "fake"})
		logs = append(logs, kwok.LogFiles{Container: cname, Current: f.path})
	}
	if err := kwok.ApplyLogs(ctx, dyn, w.namespace, name, logs); err != nil {
		return err
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.namespace, Labels: map[string]string{"bench": w.name}}, Spec: spec}
	if _, err := client.CoreV1().Pods(w.namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating pod %s: %w", name, err)
	}
	return nil
}

// settle waits for every pod to run, gives its containers the IDs a kubelet would (kwok leaves
// them empty and stern skips such containers), and waits until each log is served. Each pod is
// updated as soon as a list finds it running, from the pod that list returned: with ten thousand
// pods, waiting for the last one to run, then getting each again, doubles the time.
func (w *workload) settle(ctx context.Context, client kubernetes.Interface) error {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(createConcurrency)
	updated := make([]bool, w.pods)
	left := w.pods
	err := wait.PollUntilContextTimeout(ctx, time.Second, 20*time.Minute, true, func(ctx context.Context) (bool, error) {
		p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Pods(w.namespace).List(ctx, opts)
		})
		err := p.EachListItem(gctx, metav1.ListOptions{LabelSelector: w.selector}, func(obj runtime.Object) error {
			pod := obj.(*corev1.Pod)
			var i int
			if _, err := fmt.Sscanf(strings.TrimPrefix(pod.Name, w.name+"-"), "%d", &i); err != nil || i < 0 || i >= w.pods {
				return fmt.Errorf("unexpected pod %s", pod.Name)
			}
			if updated[i] || pod.Status.Phase != corev1.PodRunning || len(pod.Status.ContainerStatuses) != w.containers {
				return nil
			}
			updated[i] = true
			left--
			pod = pod.DeepCopy()
			g.Go(func() error { return w.settlePod(gctx, client, i, pod) })
			return nil
		})
		if err != nil {
			if gctx.Err() != nil {
				return false, g.Wait()
			}
			return false, nil
		}
		return left == 0, nil
	})
	if err != nil {
		_ = g.Wait()
		return fmt.Errorf("waiting for the pods of %s to run (%d of %d not yet): %w", w.name, left, w.pods, err)
	}
	if err := g.Wait(); err != nil {
		return err
	}
	w.took += fmt.Sprintf(", running with container IDs and logs served %s later", time.Since(start).Round(time.Second))
	return nil
}

// settlePod gives pod p's containers IDs and start times as a kubelet would, starting from pod as
// listed, and waits until its logs are served.
func (w *workload) settlePod(ctx context.Context, client kubernetes.Interface, p int, pod *corev1.Pod) error {
	name := w.podName(p)
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			var err error
			if pod, err = client.CoreV1().Pods(w.namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		first = false
		kwok.SetContainerIDs(&pod.Status)
		// kwok starts them now; their logs began earlier, which no kubelet shows.
		start := metav1.NewTime(w.started(p))
		pod.Status.StartTime = &start
		for i := range pod.Status.ContainerStatuses {
			s := &pod.Status.ContainerStatuses[i]
			if r := s.State.Running; r != nil {
				r.StartedAt = start
			}
			if p < w.terminated {
				// Finished a second after its last line, as a Job's container.
				end := metav1.NewTime(w.files[p*w.containers+i].next.Add(time.Second))
				s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
					StartedAt: start, FinishedAt: end, ContainerID: s.ContainerID}}
				s.Ready, s.Started = false, new(bool)
			}
		}
		if p < w.terminated {
			pod.Status.Phase = corev1.PodSucceeded
		}
		_, err := client.CoreV1().Pods(w.namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("setting container IDs of %s: %w", name, err)
	}
	for c := 0; c < w.containers; c++ {
		if err := kwok.WaitServed(ctx, client, w.namespace, name, fmt.Sprintf("c%d", c), false); err != nil {
			return err
		}
	}
	return nil
}

func (w *workload) delete(ctx context.Context, client kubernetes.Interface) {
	_ = client.CoreV1().Namespaces().Delete(ctx, w.namespace, metav1.DeleteOptions{})
}

func (w *workload) grow(fraction float64) error {
	for _, f := range w.files {
		if f.done {
			continue
		}
		if err := f.grow(fraction); err != nil {
			return err
		}
	}
	return nil
}

func (w *workload) shrink() error {
	for _, f := range w.files {
		if err := f.shrink(); err != nil {
			return err
		}
	}
	return nil
}
