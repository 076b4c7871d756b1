// The faults of issue 10, each produced the way a real cluster produces it: a restart between a
// run's list and its fetch, a long line split across the checkpoint's second, a followed pod
// deleted, a finished container under a follower, the modes of what a run creates, and a symlink
// swapped in for the lock. Each of these tests failed on main before the fixes.

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/logexport/kubectl-logexport/pkg/cmd"
)

// noGaps fails if a run reported any gap: in these tests the API still serves every line, so a
// gap is a false report; one that ends before it starts is said so.
func noGaps(t *testing.T, what string, s cmd.Summary) {
	t.Helper()
	for _, c := range s.Containers {
		for _, g := range c.Gaps {
			backwards := ""
			if g.To != nil && g.To.Before(g.From) {
				backwards = " (it ends before it starts)"
			}
			t.Errorf("%s: %s/%s/%s reports a gap although nothing was lost%s: %s", what, c.Namespace, c.Pod, c.Container, backwards, g)
		}
	}
}

// exportClean runs kubectl logexport -o json and expects exit 0 and no gap.
func exportClean(t *testing.T, what string, args ...string) cmd.Summary {
	t.Helper()
	res := logexport(t, append(args, "-o", "json")...)
	if res.code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, res.code, res.stdout, res.stderr)
	}
	s := decode(t, res.stdout)
	noGaps(t, what, s)
	return s
}

// terminate marks a container as finished the way a kubelet reports it: terminated with its own
// container ID, not ready.
func terminate(st *corev1.PodStatus, name string) {
	now := metav1.Now()
	for _, list := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for i := range list {
			s := &list[i]
			if s.Name != name {
				continue
			}
			s.State = terminated(s, now, 0, "Completed")
			s.Ready, s.Started = false, ptr(false)
		}
	}
}

// syncBuffer is an output that can be read while a process still writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// watchedFollower is a follower whose summary (stdout) is kept and whose stderr can be read
// while it runs.
type watchedFollower struct {
	*follower
	stdout *strings.Builder
	live   *syncBuffer
}

func startWatchedFollow(t *testing.T, args ...string) *watchedFollower {
	t.Helper()
	c := pluginCmd(nil, append([]string{"-f", "--summary-interval", "1s"}, args...)...)
	f := &watchedFollower{
		follower: &follower{t: t, cmd: c, stderr: &syncBuffer{}, done: make(chan error, 1)},
		stdout:   &strings.Builder{},
		live:     &syncBuffer{},
	}
	c.Stdout, c.Stderr = f.stdout, io.MultiWriter(f.stderr, f.live)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.done <- c.Wait() }()
	t.Cleanup(func() { _ = c.Process.Kill() })
	return f
}

// stopWithSummary sends SIGTERM and returns the exit code and the summary, whatever they are.
func (f *watchedFollower) stopWithSummary() (int, cmd.Summary) {
	f.t.Helper()
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-f.done:
	case <-time.After(15 * time.Second):
		f.t.Fatalf("follower still running 15s after SIGTERM:\n%s", f.stderr)
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		f.t.Fatal(err)
	}
	return code, decode(f.t, f.stdout.String())
}

// responseURL matches the line client-go logs (-v=6) when a request's response arrives.
var responseURL = regexp.MustCompile(`"Response" verb="GET" url="([^"]+)"`)

// logRequests counts the log requests for one container in -v=6 output.
func logRequests(t *testing.T, stderr, ns, podName, c string) int {
	t.Helper()
	n := 0
	for _, m := range responseURL.FindAllStringSubmatch(stderr, -1) {
		u, err := url.Parse(m[1])
		if err != nil {
			t.Fatalf("request URL %q: %v", m[1], err)
		}
		if u.Path == fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/log", ns, podName) && u.Query().Get("container") == c {
			n++
		}
	}
	return n
}

// 1. A container restarts after the run listed the pods and before it fetched that container:
// the status the run holds names an instance that is no longer current. The old instance's tail
// (previous=true) must still come before the new instance's lines, each line once, with no gap,
// in that run and the ones after it.
//
// The run takes the containers one at a time (--max-log-requests 1), in the order of the pod
// names: first p1-early, whose log is big enough that kwok takes seconds to serve it, then
// p2-target, which restarts while p1-early streams.
func TestRestartBetweenListAndFetch(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	first := newLog(t).add(at(0, 0), "a-1", "a-2", "a-3")
	cs := []container{{name: "app", log: first}}
	createPod(t, ns, pod{name: "p2-target", containers: cs})
	file := filepath.Join(dir, ns, "p2-target", "app.log")
	exportClean(t, "first run", "-n", ns, "-d", dir, "p2-target")
	assertFile(t, file, lines("a-1", "a-2", "a-3"))

	// About 29 MB: 10 to 15 s through the API server, plenty for a restart to land.
	earlyWant := bigPod(t, ns, "p1-early", 250000)
	earlyFile := filepath.Join(dir, ns, "p1-early", "app.log")
	// Instance A logs its last lines, which no run has stored yet; instance B is what follows.
	first.add(at(1, 0), "a-4", "a-5")
	second := newLog(t).add(at(10, 0), "b-1", "b-2")

	c := pluginCmd(nil, "-n", ns, "-d", dir, "--max-log-requests", "1", "-o", "json")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill() })
	// The run has listed the pods once it writes p1-early's log.
	waitSize(t, earlyFile, 1)
	restart(t, ns, "p2-target", cs, "app", second)
	// p2-target is fetched only once p1-early's file is complete: while it is not, the restart
	// has landed between the list and the fetch, which is what this test is about.
	if n := writtenSize(earlyFile); n >= int64(len(earlyWant)) {
		t.Fatalf("the run was done with p1-early before the restart landed (%d bytes written); make its log bigger", n)
	}
	err := c.Wait()
	t.Logf("run with the restart in the middle: %v\nstderr: %s", err, stderr.String())
	if err != nil {
		t.Fatalf("run with the restart in the middle: %v\nstdout: %s", err, stdout.String())
	}
	noGaps(t, "run with the restart in the middle", decode(t, stdout.String()))
	assertFile(t, earlyFile, earlyWant)

	second.add(at(11, 0), "b-3")
	exportClean(t, "run after the restart", "-n", ns, "-d", dir)
	s := exportClean(t, "run with nothing new", "-n", ns, "-d", dir)
	if got := find(t, s, ns, "p2-target", "app"); got.Lines != 0 {
		t.Errorf("run with nothing new added %d lines", got.Lines)
	}
	assertFile(t, file, lines("a-1", "a-2", "a-3", "a-4", "a-5", "b-1", "b-2", "b-3"))
}

// partialLine returns the CRI entries of one long line that the runtime split into partial (P)
// entries: one piece per timestamp in pieces, then the final (F) entry end at endAt. It also
// returns the line as it is stored.
func partialLine(pieces []time.Time, end string, endAt time.Time) (entries, line string) {
	var b, l strings.Builder
	for i, ts := range pieces {
		// 16 KiB, as container runtimes split; each piece tells where it belongs.
		piece := fmt.Sprintf("piece-%d-", i) + strings.Repeat("x", 16<<10)
		fmt.Fprintf(&b, "%s stdout P %s\n", ts.UTC().Format(criLayout), piece)
		l.WriteString(piece)
	}
	fmt.Fprintf(&b, "%s stdout F %s\n", endAt.UTC().Format(criLayout), end)
	l.WriteString(end)
	return b.String(), l.String()
}

// 2. A long line split into partial entries that begin in second S-1 and end in second S, and a
// checkpoint in second S (the line after it was logged in S). The next run asks from S on; the
// kubelet skips the entries before S but writes a timestamp only where a line begins, so what it
// serves begins with an untimestamped fragment of the long line. That fragment was stored with
// its line and must be recognized as such: the line once, whole, the lines after it once, no
// error, no gap.
func TestPartialLineAcrossCheckpointSecond(t *testing.T) {
	tests := []struct {
		name string
		// partial entries in second S-1 and in second S; the F entry is in S.
		early, late int
		// second of the line logged after the first run: S (the run resumes inside S) or S+1.
		next int
	}{
		{"one piece in S", 3, 1, 2},
		{"one piece before S", 1, 3, 2},
		{"only the final entry in S", 4, 0, 2},
		{"resume inside S", 2, 2, 1},
		{"2 MiB line, half in each second", 64, 64, 2},
	}
	ns := newNamespace(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			name := fmt.Sprintf("p%d", i)
			// S-1 is second 0 and S second 1.
			var pieces []time.Time
			for j := 0; j < tt.early; j++ {
				pieces = append(pieces, at(0, 900_000_000+j))
			}
			for j := 0; j < tt.late; j++ {
				pieces = append(pieces, at(1, 1000+j))
			}
			entries, long := partialLine(pieces, "end", at(1, 100_000))
			log := newLog(t).add(at(0, 0), "before").raw(entries).add(at(1, 200_000), "after")
			createPod(t, ns, pod{name: name, containers: []container{{name: "app", log: log}}})
			file := filepath.Join(dir, ns, name, "app.log")
			exportClean(t, "first run", "-n", ns, "-d", dir, "^"+name+"$")
			assertFile(t, file, lines("before", long, "after"))

			log.add(at(tt.next, 300_000), "later")
			res := logexport(t, "-n", ns, "-d", dir, "-o", "json", "^"+name+"$")
			s := decode(t, res.stdout)
			c := find(t, s, ns, name, "app")
			if res.code != 0 || c.Error != "" {
				t.Fatalf("second run: exit %d, %s: %s", res.code, c.Status, c.Error)
			}
			noGaps(t, "second run", s)
			if c.Lines != 1 {
				t.Errorf("second run added %d lines, want 1", c.Lines)
			}
			assertFile(t, file, lines("before", long, "after", "later"))

			s = exportClean(t, "third run", "-n", ns, "-d", dir, "^"+name+"$")
			if c := find(t, s, ns, name, "app"); c.Lines != 0 || c.Status != "up to date" {
				t.Errorf("third run: %+v", c)
			}
			assertFile(t, file, lines("before", long, "after", "later"))
		})
	}
}

// 3. A followed pod is deleted the way a kubelet does it: its container stops (the follow stream
// ends, as a kubelet ends it; kwok never ends one, so --reconnect-interval ends it), the status
// says terminated, then the pod object goes and its log answers 404. Every line was stored, so
// the follower must not call that a failure: the summary says ok (or gone) and the exit code is 0.
func TestFollowPodDeleted(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "x-1", "x-2")
	createPod(t, ns, pod{name: "b-0", containers: []container{{name: "app", log: log}}})
	file := filepath.Join(dir, ns, "b-0", "app.log")
	f := startWatchedFollow(t, "-n", ns, "-d", dir, "-o", "json", "--reconnect-interval", "1s")
	waitContent(t, file, lines("x-1", "x-2"))

	// The container's last words, then it stops.
	log.add(at(1, 0), "x-3")
	waitContent(t, file, lines("x-1", "x-2", "x-3"))
	updateStatus(t, ns, "b-0", func(st *corev1.PodStatus) { terminate(st, "app") })
	// Let the follower see the stream end and the container terminated before the pod goes.
	time.Sleep(3 * time.Second)
	deletePod(t, ns, "b-0")
	// The follower notices the deletion within a second and lets go of the pod within its drain
	// time of 5 s.
	time.Sleep(7 * time.Second)

	code, s := f.stopWithSummary()
	t.Logf("follower stderr:\n%s", f.stderr)
	c := find(t, s, ns, "b-0", "app")
	if code != 0 || (c.Status != "ok" && c.Status != "gone") || c.Error != "" {
		t.Fatalf("follower after the pod was deleted: exit %d, summary %+v", code, c)
	}
	if c.Lines != 3 {
		t.Errorf("the follower counted %d lines of b-0, want 3", c.Lines)
	}
	assertFile(t, file, lines("x-1", "x-2", "x-3"))
}

// 4. A container that has finished serves the same log forever: once it is stored, a follower
// must not ask for it again (on a real cluster, every init container, finished Job and
// CrashLoopBackOff would otherwise be fetched every 2 s and hold stream slots running containers
// need). The requests are counted in client-go's -v=6 output over 10 s after the log was stored.
func TestFollowFinishedContainerNotRequestedAgain(t *testing.T) {
	tests := []struct {
		name string
		pod  pod
		// finish marks the finished container terminated, if kwok does not already.
		finish func(st *corev1.PodStatus)
	}{
		{
			name: "init container",
			pod:  pod{name: "with-init", containers: []container{{name: "setup", init: true}, {name: "app"}}},
		},
		{
			name: "finished job",
			pod:  pod{name: "job", containers: []container{{name: "setup"}}},
			finish: func(st *corev1.PodStatus) {
				terminate(st, "setup")
				st.Phase = corev1.PodSucceeded
			},
		},
	}
	ns := newNamespace(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.pod
			p.containers = append([]container(nil), p.containers...)
			for i := range p.containers {
				p.containers[i].log = newLog(t).add(at(0, 0), p.containers[i].name+"-1", p.containers[i].name+"-2")
			}
			createPod(t, ns, p)
			if tt.finish != nil {
				updateStatus(t, ns, p.name, tt.finish)
			}
			waitTerminated(t, ns, p.name, "setup")
			dir := t.TempDir()
			f := startWatchedFollow(t, "-n", ns, "-d", dir, "-v=6", "^"+p.name+"$")
			waitContent(t, filepath.Join(dir, ns, p.name, "setup.log"), lines("setup-1", "setup-2"))
			stored := logRequests(t, f.live.String(), ns, p.name, "setup")
			time.Sleep(10 * time.Second)
			after := logRequests(t, f.live.String(), ns, p.name, "setup")
			f.stop(syscall.SIGTERM)
			t.Logf("log requests for the finished container: %d until its log was stored, %d in the 10 s after", stored, after-stored)
			if after-stored > 1 {
				t.Fatalf("the finished container was requested %d more times in the 10 s after its log was stored (%d before), want at most 1", after-stored, stored)
			}
			if stored+after == 0 {
				t.Fatalf("no log request seen in the -v=6 output; has its format changed?\n%s", clip(f.stderr.String()))
			}
		})
	}
}

// waitTerminated waits until the pod's status shows the container terminated.
func waitTerminated(t *testing.T, ns, podName, c string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
			for _, s := range list {
				if s.Name == c && s.State.Terminated != nil {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("container %s of %s/%s never terminated: %v", c, ns, podName, err)
	}
}

// 5. Logs carry tokens and personal data: what a run creates is for its user only (files 0600,
// directories 0700), or for the group too with --group-readable (0640, 0750). The umask is 0
// here, so the modes are the ones the tool asks for, not what a umask takes away.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	ns := newNamespace(t)
	tests := []struct {
		name              string
		args              []string
		fileMode, dirMode fs.FileMode
	}{
		{"default", nil, 0o600, 0o700},
		{"group-readable", []string{"--group-readable"}, 0o640, 0o750},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("web-%d", i)
			createPod(t, ns, pod{name: name, containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "secret")}}})
			// A directory the run creates itself, as on a first run.
			dir := filepath.Join(t.TempDir(), "logs")
			exportClean(t, "export", append([]string{"-n", ns, "-d", dir, "^" + name + "$"}, tt.args...)...)

			// Every kind of thing a run creates must be there to be checked.
			want := map[string]bool{}
			for _, p := range []string{".", ".logexport", ".logexport/checkpoints", ns, ns + "/" + name,
				".logexport/meta.json", ".logexport/lock", ".logexport/checkpoints/" + ns + ".jsonl", ns + "/" + name + "/app.log"} {
				want[filepath.FromSlash(p)] = true
			}
			lock := filepath.Join(".logexport", "lock")
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				delete(want, rel)
				got, w := fi.Mode().Perm(), tt.fileMode
				if d.IsDir() {
					w = tt.dirMode
				}
				switch {
				case rel == lock:
					// The lock holds nothing: no more than the others, but it need not be readable.
					if got&^w != 0 {
						t.Errorf("%s has mode %04o, want at most %04o", rel, got, w)
					}
				case got != w:
					t.Errorf("%s has mode %04o, want %04o", rel, got, w)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for rel := range want {
				t.Errorf("the run did not create %s", rel)
			}
		})
	}
}

// 6. The lock is opened through the directory's root, so a symlink at DIR/.logexport/lock that
// points outside DIR is never followed: the run refuses with a message that names the lock (or
// replaces the link), and nothing outside DIR is created. A check of the path followed by an
// open by path is not enough: the link can be swapped in between, which the second case does
// (runs as the lock flips between a file and the link).
func TestLockSymlinkNotFollowed(t *testing.T) {
	ns := newNamespace(t)
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "hello")}}})
	setup := func(t *testing.T) (dir, lock, outside string) {
		t.Helper()
		base := t.TempDir()
		dir = filepath.Join(base, "logs")
		if err := os.MkdirAll(filepath.Join(dir, ".logexport"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(base, "outside"), 0o700); err != nil {
			t.Fatal(err)
		}
		// The link dangles: a run that follows it creates the file.
		return dir, filepath.Join(dir, ".logexport", "lock"), filepath.Join(base, "outside", "planted")
	}
	untouched := func(t *testing.T, outside, when string) {
		t.Helper()
		if _, err := os.Lstat(outside); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: the run followed the lock's symlink out of the directory: %s exists (%v)", when, outside, err)
		}
	}

	t.Run("planted before the run", func(t *testing.T) {
		dir, lock, outside := setup(t)
		if err := os.Symlink(outside, lock); err != nil {
			t.Fatal(err)
		}
		res := logexport(t, "-n", ns, "-d", dir)
		untouched(t, outside, "planted before the run")
		switch fi, err := os.Lstat(lock); {
		case res.code == 1:
			oneLineError(t, res, filepath.Join(".logexport", "lock"))
		case res.code == 0 && err == nil && fi.Mode().IsRegular():
			// Replaced by a lock file of its own: fine.
		default:
			t.Fatalf("exit %d, lock %v %v, stderr %q: want a refusal naming the lock, or the link replaced", res.code, fi, err, res.stderr)
		}
	})

	t.Run("swapped in while runs start", func(t *testing.T) {
		dir, lock, outside := setup(t)
		// The lock flips between a regular file and the link as fast as one system call can swap
		// two names (renameat2 RENAME_EXCHANGE), so that it is equally often either.
		if err := os.WriteFile(lock, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		alt := lock + ".alt"
		if err := os.Symlink(outside, alt); err != nil {
			t.Fatal(err)
		}
		var stop atomic.Bool
		done := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			for !stop.Load() {
				if err := unix.Renameat2(unix.AT_FDCWD, lock, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		defer func() {
			stop.Store(true)
			if err := <-done; err != nil {
				t.Errorf("swapping the lock: %v", err)
			}
		}()
		// Each run is a follower against an unreachable server: it takes the lock before it talks to
		// the cluster and exits right after, so that many runs fit in little time. The plugin is run
		// directly: kubectl's own start would cost more than the run. Whether a run falls in the
		// window depends on how the scheduler interleaves it with the swapping thread; on main, on 2
		// cores also busy with other tests, the first run to take the link was the 5th to the 55th
		// (0.15 s a run). At one in 60, 150 runs miss it with a probability of 8%: enough for a
		// regression test that runs on every change, at 40 s rather than 90.
		deadline := time.Now().Add(40 * time.Second)
		runs := 0
		for ; runs < 150 && time.Now().Before(deadline); runs++ {
			c := exec.Command(filepath.Join(binDir, "kubectl-logexport"), "-f", "-n", ns, "-d", dir,
				"--server", "https://127.0.0.1:1", "--insecure-skip-tls-verify")
			c.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
			out, err := c.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("run %d: %v", runs+1, err)
			}
			if strings.Contains(string(out), "panic") {
				t.Fatalf("run %d: %s", runs+1, out)
			}
			untouched(t, outside, fmt.Sprintf("run %d", runs+1))
		}
		t.Logf("%d runs while the lock flipped", runs)
	})
}
