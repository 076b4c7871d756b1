package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

type follower struct {
	t   *testing.T
	cmd *exec.Cmd
	// stderr is read while the follower writes it.
	stderr *syncBuffer
	done   chan error
}

func startFollow(t *testing.T, args ...string) *follower {
	t.Helper()
	return startFollowEnv(t, nil, args...)
}

// startFollowEnv starts a follower with env added to its environment (a bucket's, see s3).
func startFollowEnv(t *testing.T, env []string, args ...string) *follower {
	t.Helper()
	c := pluginCmd(env, append([]string{"-f", "--summary-interval", "1s"}, args...)...)
	f := &follower{t: t, cmd: c, stderr: &syncBuffer{}, done: make(chan error, 1)}
	c.Stderr = f.stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.done <- c.Wait() }()
	t.Cleanup(func() { _ = c.Process.Kill() })
	return f
}

// stop sends sig and expects a clean exit within a few seconds.
func (f *follower) stop(sig syscall.Signal) {
	f.t.Helper()
	_ = f.cmd.Process.Signal(sig)
	select {
	case err := <-f.done:
		if err != nil {
			f.t.Fatalf("follower exited with %v after %s:\n%s", err, sig, f.stderr)
		}
	case <-time.After(10 * time.Second):
		f.t.Fatalf("follower still running 10s after %s", sig)
	}
}

func (f *follower) kill() {
	_ = f.cmd.Process.Signal(syscall.SIGKILL)
	<-f.done
}

// waitContent waits until a followed file holds exactly want.
func waitContent(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got []byte
	for time.Now().Before(deadline) {
		got, _ = os.ReadFile(path)
		if string(got) == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never became\n%q\nlast:\n%q", path, clip(want), clip(string(got)))
}

// Following: pods that appear, log, restart, rotate and go away; the files end up with every line
// the API served, once.
func TestFollow(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	la := newLog(t).add(at(0, 0), "a1", "a1")
	csA := []container{{name: "app", log: la}}
	createPod(t, ns, pod{name: "alpha", containers: csA})
	f := startFollow(t, "-n", ns, "-d", dir)
	fileA := filepath.Join(dir, ns, "alpha", "app.log")
	waitContent(t, fileA, lines("a1", "a1"))

	la.add(at(1, 0), "a2").add(at(1, 0), "a2")
	waitContent(t, fileA, lines("a1", "a1", "a2", "a2"))

	// A pod that appears while following is picked up.
	lb := newLog(t).add(at(0, 0), "b1")
	createPod(t, ns, pod{name: "beta", containers: []container{{name: "app", log: lb}}})
	fileB := filepath.Join(dir, ns, "beta", "app.log")
	waitContent(t, fileB, lines("b1"))

	// A restart: the old instance's last lines, then the new instance.
	la.add(at(2, 0), "a3")
	la2 := newLog(t).add(at(10, 0), "a-new")
	restart(t, ns, "alpha", csA, "app", la2)
	waitContent(t, fileA, lines("a1", "a1", "a2", "a2", "a3", "a-new"))
	la2.add(at(11, 0), "a-new2")
	waitContent(t, fileA, lines("a1", "a1", "a2", "a2", "a3", "a-new", "a-new2"))

	// The pod logs its last line and goes away; its file keeps everything.
	lb.add(at(1, 0), "b-last")
	deletePod(t, ns, "beta")
	waitContent(t, fileB, lines("b1", "b-last"))
	f.stop(syscall.SIGTERM)
	assertFile(t, fileB, lines("b1", "b-last"))
	assertFile(t, fileA, lines("a1", "a1", "a2", "a2", "a3", "a-new", "a-new2"))

	// One-shot runs continue where the follower stopped.
	la2.add(at(12, 0), "a-new3")
	s := export(t, "-n", ns, "-d", dir)
	if c := find(t, s, ns, "alpha", "app"); c.Lines != 1 {
		t.Fatalf("one-shot after follow: %+v", c)
	}
	assertFile(t, fileA, lines("a1", "a1", "a2", "a2", "a3", "a-new", "a-new2", "a-new3"))
}

// A follower killed with SIGKILL resumes exactly when started again; a one-shot run meanwhile is
// refused by the lock.
func TestFollowKilledResumesAndLocks(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), seq("x", 100)...)
	createPod(t, ns, pod{name: "p", containers: []container{{name: "app", log: log}}})
	file := filepath.Join(dir, ns, "p", "app.log")
	f := startFollow(t, "-n", ns, "-d", dir)
	want := lines(seq("x", 100)...)
	waitContent(t, file, want)

	res := logexport(t, "-n", ns, "-d", dir)
	if res.code != 1 || !strings.Contains(res.stderr, "locked by another kubectl logexport run") {
		t.Fatalf("one-shot while following: exit %d, %q", res.code, res.stderr)
	}
	for round := 0; round < 3; round++ {
		more := seq("r"+string(rune('a'+round)), 50)
		log.add(at(1+round, 0), more...)
		want += lines(more...)
		waitContent(t, file, want)
		f.kill()
		f = startFollow(t, "-n", ns, "-d", dir)
	}
	log.add(at(9, 0), "final")
	want += lines("final")
	waitContent(t, file, want)
	f.stop(syscall.SIGINT)
	assertFile(t, file, want)
}

// The API server restarts while following: the streams reconnect and resume with no loss and no
// duplicate.
func TestFollowAcrossAPIServerRestart(t *testing.T) {
	if os.Getenv("E2E_KUBECONFIG") != "" {
		t.Skip("restarts only a cluster the tests started themselves")
	}
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "before")
	createPod(t, ns, pod{name: "p", containers: []container{{name: "app", log: log}}})
	file := filepath.Join(dir, ns, "p", "app.log")
	f := startFollow(t, "-n", ns, "-d", dir)
	waitContent(t, file, lines("before"))

	c := exec.Command(filepath.Join(repoRoot, "hack", "cluster.sh"), "restart-apiserver", clusterName)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("restarting the cluster: %v\n%s", err, out)
	}
	log.add(at(0, 0), "before").add(at(5, 0), "after")
	waitContent(t, file, lines("before", "before", "after"))
	f.stop(syscall.SIGTERM)
	assertFile(t, file, lines("before", "before", "after"))
}

// More containers than --max-log-requests is not an error: the streams take turns, and every
// container is followed.
func TestFollowMoreContainersThanStreams(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	logs := map[string]*criLog{}
	for _, name := range []string{"p1", "p2", "p3"} {
		logs[name] = newLog(t).add(at(0, 0), name+"-a")
		createPod(t, ns, pod{name: name, containers: []container{{name: "app", log: logs[name]}}})
	}
	f := startFollow(t, "-n", ns, "-d", dir, "--max-log-requests", "1")
	for name, l := range logs {
		l.add(at(1, 0), name+"-b")
	}
	for name := range logs {
		waitContent(t, filepath.Join(dir, ns, name, "app.log"), lines(name+"-a", name+"-b"))
	}
	f.stop(syscall.SIGTERM)
	if !regexp.MustCompile(`[1-9][0-9]* waiting for a stream \(--max-log-requests 1\)`).MatchString(f.stderr.String()) {
		t.Fatalf("the status never said what waits:\n%s", f.stderr)
	}
}

// Without --max-log-requests a follower opens a stream for every container, more than the 10 a
// one-shot run asks for at once: none waits for a turn, and each line comes while the streams
// stay open.
func TestFollowStreamPerContainer(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	logs := map[string]*criLog{}
	for i := range 12 {
		name := fmt.Sprintf("p%02d", i)
		logs[name] = newLog(t).add(at(0, 0), name+"-a")
		createPod(t, ns, pod{name: name, containers: []container{{name: "app", log: logs[name]}}})
	}
	f := startWatchedFollow(t, "-n", ns, "-d", dir)
	open := regexp.MustCompile(`following 12 containers \(0 stopped and stored\): 12 streams open, 0 waiting for a stream \(a stream per container\)`)
	deadline := time.Now().Add(30 * time.Second)
	for !open.MatchString(f.live.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("never 12 streams open at once:\n%s", f.live)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for name, l := range logs {
		l.add(at(1, 0), name+"-b")
	}
	for name := range logs {
		waitContent(t, filepath.Join(dir, ns, name, "app.log"), lines(name+"-a", name+"-b"))
	}
	// The status counts what the open streams stored (it once counted only exports that ended,
	// and said 0 lines while every stream stayed open).
	stored := regexp.MustCompile(`12 streams open, 0 waiting for a stream \(a stream per container\), 24 lines \([0-9]+ bytes\) exported`)
	for !stored.MatchString(f.live.String()) {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("the status never counted the 24 lines the open streams stored:\n%s", f.live)
		}
		time.Sleep(200 * time.Millisecond)
	}
	f.stop(syscall.SIGTERM)
	if strings.Contains(f.stderr.String(), "waiting for a stream (--max-log-requests") || regexp.MustCompile(`[1-9][0-9]* waiting for a stream`).MatchString(f.stderr.String()) {
		t.Fatalf("a container waited for a stream:\n%s", f.stderr)
	}
}

// A log rotated while it is followed (the file replaced, as the kubelet does): what the API
// serves after the rotation is appended, nothing twice.
func TestFollowRotation(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "r1", "r2")
	createPod(t, ns, pod{name: "p", containers: []container{{name: "app", log: log}}})
	file := filepath.Join(dir, ns, "p", "app.log")
	// kwok keeps streaming the replaced file, a kubelet would not: reconnects catch it up.
	f := startFollow(t, "-n", ns, "-d", dir, "--reconnect-interval", "2s")
	waitContent(t, file, lines("r1", "r2"))
	log.replace("")
	log.add(at(3, 0), "after-1").add(at(4, 0), "after-2")
	waitContent(t, file, lines("r1", "r2", "after-1", "after-2"))
	f.stop(syscall.SIGTERM)
	if !strings.Contains(f.stderr.String(), "gap from 2024-01-01T10:00:00Z to 2024-01-01T10:00:04Z: the log was rotated") {
		t.Fatalf("the rotation was not reported as a possible gap:\n%s", f.stderr)
	}
	log.add(at(5, 0), "after-3")
	export(t, "-n", ns, "-d", dir)
	assertFile(t, file, lines("r1", "r2", "after-1", "after-2", "after-3"))
}

// A whole line, then the start of a line longer than the follower's read buffer (256 KiB) that
// the program has not ended yet: the whole line is saved (its checkpoint written) within the save
// interval, not when the long line ends, however long that takes; then the long line is stored
// once, whole.
func TestFollowSavesBeforeALongLineEnds(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), seq("x", 10)...)
	createPod(t, ns, pod{name: "p", containers: []container{{name: "app", log: log}}})
	file := filepath.Join(dir, ns, "p", "app.log")
	f := startFollow(t, "-n", ns, "-d", dir)
	want := lines(seq("x", 10)...)
	waitContent(t, file, want)
	waitCheckpointSize(t, dir, ns, "p", "app", len(want))

	// v is saved at once (the last save is older than the interval); w comes within the
	// interval after it, with the start of the long line: 20 partial entries of 16 KiB.
	time.Sleep(3 * time.Second)
	log.add(at(1, 0), "v")
	want += lines("v")
	waitCheckpointSize(t, dir, ns, "p", "app", len(want))
	pieces := make([]time.Time, 20)
	for i := range pieces {
		pieces[i] = at(1, 2_000_000+i)
	}
	entries, long := partialLine(pieces, "end", at(2, 0))
	final := strings.LastIndex(strings.TrimSuffix(entries, "\n"), "\n") + 1
	log.add(at(1, 1_000_000), "w").raw(entries[:final])
	want += lines("w")
	waitCheckpointSize(t, dir, ns, "p", "app", len(want))

	log.raw(entries[final:])
	want += lines(long)
	waitContent(t, file, want)
	f.stop(syscall.SIGINT)
	assertFile(t, file, want)
	waitCheckpointSize(t, dir, ns, "p", "app", len(want))
}

// waitCheckpointSize waits up to 10 s (a follower saves every 2 s) until the container's
// checkpoint covers size bytes of its file.
func waitCheckpointSize(t *testing.T, dir, ns, podName, c string, size int) {
	t.Helper()
	var got struct{ Size, Lines int64 }
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(checkpointFile(dir, ns)); err != nil {
			continue
		}
		if line := checkpointLine(t, dir, ns, podName, c); line != "" {
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("checkpoint %q: %v", line, err)
			}
			if got.Size == int64(size) {
				return
			}
		}
	}
	t.Fatalf("%s/%s/%s: checkpoint covers %d bytes (%d lines) after 10s, want %d", ns, podName, c, got.Size, got.Lines, size)
}
