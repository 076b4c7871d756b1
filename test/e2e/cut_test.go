package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/logexport/kubectl-logexport/pkg/cmd"
)

// cutProxy stands between the API server and kwok's kubelet server the way a network path that
// breaks does: while cutting, it closes each connection once it has forwarded that many bytes
// from the kubelet. The API server then ends the log response it was streaming as if the log
// ended there (it drops the error of its copy from the kubelet): a normal, short response.
type cutProxy struct {
	target string

	mu    sync.Mutex
	after int64 // bytes from the kubelet a connection forwards; 0: all
	// once: only the next connection is cut.
	once  bool
	conns map[net.Conn]bool
	cuts  int
}

func (p *cutProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *cutProxy) forward(apiserver net.Conn) {
	defer apiserver.Close()
	kubelet, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer kubelet.Close()
	p.mu.Lock()
	after := p.after
	if p.once {
		p.after, p.once = 0, false
	}
	p.conns[apiserver] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, apiserver)
		p.mu.Unlock()
	}()
	go func() {
		_, _ = io.Copy(kubelet, apiserver)
		_ = kubelet.Close()
	}()
	var from io.Reader = kubelet
	if after > 0 {
		from = io.LimitReader(kubelet, after)
	}
	n, _ := io.Copy(apiserver, from)
	if after > 0 && n == after {
		p.mu.Lock()
		p.cuts++
		p.mu.Unlock()
	}
}

// cutAfter makes connections made from now on cut after n bytes (0: never), and closes the open
// ones, which the API server would otherwise reuse uncut.
func (p *cutProxy) cutAfter(n int64) { p.cut(n, false) }

// cutNextAfter is cutAfter for the next connection only.
func (p *cutProxy) cutNextAfter(n int64) { p.cut(n, true) }

func (p *cutProxy) cut(n int64, once bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.after, p.once = n, once
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *cutProxy) cutCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// cutNode adds a kwok node whose kubelet endpoint is a cutProxy in front of kwok's. kwok writes
// the endpoint once when it initializes a node and again at its heartbeat, ten minutes or more
// later: longer than a test.
func cutNode(t *testing.T) (string, *cutProxy) {
	t.Helper()
	ctx := context.Background()
	name := "kwok-cut-" + randID()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name},
		},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "kwok.x-k8s.io/node", Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating node: %v", err)
	}
	t.Cleanup(func() {
		if err := client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting node %s: %v", name, err)
		}
	})
	var target string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		port := n.Status.DaemonEndpoints.KubeletEndpoint.Port
		// The API server's default preference: kwokctl's nodes have a Hostname address only.
		for _, typ := range []corev1.NodeAddressType{corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeInternalIP} {
			for _, a := range n.Status.Addresses {
				if a.Type == typ && port > 0 {
					target = net.JoinHostPort(a.Address, strconv.Itoa(int(port)))
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for kwok to initialize node %s: %v", name, err)
	}
	// Every interface: the API server dials the node's address.
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := &cutProxy{target: target, conns: map[net.Conn]bool{}}
	go p.serve(ln)
	port := ln.Addr().(*net.TCPAddr).Port
	patch := fmt.Sprintf(`{"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":%d}}}}`, port)
	if _, err := client.CoreV1().Nodes().PatchStatus(ctx, name, []byte(patch)); err != nil {
		t.Fatalf("pointing node %s at the proxy: %v", name, err)
	}
	return name, p
}

// A finished container whose log responses the API server ends early, and normally, because its
// connection to the kubelet breaks: no run takes such an end for the log's end (issue 13's "never
// fetch what cannot change" would then never read the rest), every run stores a prefix of the log
// with no line doubled, and once the path holds, the next runs store the rest and confirm it.
// Each connection is cut after 256 KiB; the log is 20,000 lines (3.6 MB served), 100 a second, so that every cut
// falls after the stored window's second that a resumed read starts with.
func TestFinishedContainerReadAcrossCutResponses(t *testing.T) {
	node, proxy := cutNode(t)
	ns, job, want := finishedJob(t, node, 200, 120)
	dir := t.TempDir()
	file := filepath.Join(dir, ns, job.name, "work.log")

	run := func(what string, okOnly bool) cmd.ContainerSummary {
		t.Helper()
		res := logexport(t, "-n", ns, "-d", dir, "-o", "json")
		// A cut inside a line's timestamp fails the container for this run (exit 1).
		if res.code != 0 && (okOnly || res.code != 1) {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, res.code, clip(res.stdout), clip(res.stderr))
		}
		s := decode(t, res.stdout)
		noGaps(t, what, s)
		return find(t, s, ns, job.name, "work")
	}
	prefix := func(what string) int {
		t.Helper()
		got := readFileOrEmpty(t, file)
		n := strings.Count(got, "\n")
		if n > len(want) || got != lines(want[:n]...) {
			t.Fatalf("%s: the file is not a prefix of the log (%d lines, first difference near %q)", what, n, firstDiff(got, lines(want...)))
		}
		return n
	}

	proxy.cutAfter(256 << 10)
	for i := 1; i <= 2; i++ {
		c := run(fmt.Sprintf("cut run %d", i), false)
		n := prefix(fmt.Sprintf("cut run %d", i))
		t.Logf("cut run %d: %d of %d lines stored, status %q %s", i, n, len(want), c.Status, c.Error)
	}
	if proxy.cutCount() == 0 {
		t.Fatalf("no response was cut: the API server did not reach kwok through the proxy")
	}
	if n := prefix("after the cut runs"); n == 0 || n == len(want) {
		t.Fatalf("after the cut runs: %d of %d lines stored, want some but not all", n, len(want))
	}

	proxy.cutAfter(0)
	c := run("first whole run", true)
	if c.Lines == 0 {
		t.Errorf("first whole run: %+v, wrote nothing: an earlier run took a cut response for the log's end", c)
	}
	for i := 2; c.Status != "up to date"; i++ {
		if i > 4 {
			t.Fatalf("not up to date after %d whole runs: %+v", i-1, c)
		}
		c = run(fmt.Sprintf("whole run %d", i), true)
	}
	assertFile(t, file, lines(want...))
}

// A finished container stored to its end by one run, whose next run's read (the one that would
// confirm the end) is cut inside the lines already stored: that is a response cut short, not a log
// that is shorter now, which only a second read that ends at the same byte would show. The run
// reads again, reports no gap, and confirms the end; the run after it asks for nothing. (Taken as
// a rotation, the read reported a gap and left the window unknown: asked for on every run, never
// confirmed.)
func TestFinishedContainerConfirmedAcrossACutInsideStoredLines(t *testing.T) {
	node, proxy := cutNode(t)
	ns, job, want := finishedJob(t, node, 3, 100)
	dir := t.TempDir()
	file := filepath.Join(dir, ns, job.name, "work.log")

	run := func(what string) (cmd.ContainerSummary, int) {
		t.Helper()
		res := logexport(t, "-n", ns, "-d", dir, "-o", "json", "-v=6")
		if res.code != 0 {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, res.code, clip(res.stdout), clip(res.stderr))
		}
		s := decode(t, res.stdout)
		noGaps(t, what, s)
		return find(t, s, ns, job.name, "work"), logRequests(t, res.stderr, ns, job.name, "work")
	}
	if c, _ := run("first run"); c.Lines != int64(len(want)) {
		t.Fatalf("first run: %+v, want %d lines", c, len(want))
	}
	// The lines are older than the container's start in its status, which proves nothing of
	// which instance served them: the next read's, which serves them again, marks the end.
	if c, requests := run("second run"); c.Status != "up to date" || requests != 1 {
		t.Fatalf("second run: %+v after %d log requests, want up to date after one", c, requests)
	}
	// The stored window is the last second's 100 lines, 14 KB: 4 KiB from the kubelet end
	// inside it.
	proxy.cutNextAfter(4 << 10)
	c, requests := run("confirming run, its first response cut")
	if proxy.cutCount() != 1 {
		t.Fatalf("%d responses cut, want 1", proxy.cutCount())
	}
	if c.Status != "up to date" || requests < 2 {
		t.Fatalf("confirming run: %+v after %d log requests, want up to date after reading again", c, requests)
	}
	if c, requests := run("the run after"); c.Status != "up to date" || requests != 0 {
		t.Fatalf("the run after: %+v after %d log requests, want up to date without one: the end was not confirmed", c, requests)
	}
	assertFile(t, file, lines(want...))
}

// finishedJob creates a pod "job" on node, in a new namespace, whose container "work" logged
// 100 lines of pad bytes (and a name) in each of seconds seconds and succeeded; want is its lines.
func finishedJob(t *testing.T, node string, seconds, pad int) (ns string, job pod, want []string) {
	t.Helper()
	ns = newNamespace(t)
	l := newLog(t)
	for s := range seconds {
		texts := make([]string, 100)
		for i := range texts {
			texts[i] = fmt.Sprintf("job-%03d-%02d %s", s, i, strings.Repeat("x", pad))
		}
		l.add(at(s, 0), texts...)
		want = append(want, texts...)
	}
	job = pod{name: "job", node: node, containers: []container{{name: "work", log: l}}}
	createPod(t, ns, job)
	updateStatus(t, ns, job.name, func(st *corev1.PodStatus) {
		terminate(st, "work")
		st.Phase = corev1.PodSucceeded
	})
	waitTerminated(t, ns, job.name, "work")
	return ns, job, want
}

// firstDiff is a few bytes of got from where it first differs from want.
func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return got[max(0, i-40):min(len(got), i+40)]
}
