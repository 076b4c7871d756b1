package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/shard"
	"github.com/logexport/kubectl-logexport/test/kwok"
)

// createPods creates many one-container pods at once, as createPod does one: their Logs objects
// and pods in parallel, then each pod, as soon as a list finds it running, gets its container IDs
// and is waited for until kwok serves its log. One by one, 300 pods take minutes.
func createPods(t *testing.T, ns string, pods []pod) {
	t.Helper()
	ctx := context.Background()
	const concurrency = 32 // keeps an API server on 2 cores busy without queueing in its APF
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	byName := map[string]pod{}
	for _, p := range pods {
		byName[p.name] = p
		g.Go(func() error {
			spec := kwok.PodSpec()
			var files []kwok.LogFiles
			for _, c := range p.containers {
				spec.Containers = append(spec.Containers, corev1.Container{Name: c.name, Image: "fake"})
				files = append(files, kwok.LogFiles{Container: c.name, Current: c.log.path})
			}
			if err := kwok.ApplyLogs(gctx, dyn, ns, p.name, files); err != nil {
				return err
			}
			_, err := client.CoreV1().Pods(ns).Create(gctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: ns, Labels: p.labels}, Spec: spec}, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("creating pod %s: %w", p.name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	settled := map[string]bool{}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for i := range list.Items {
			got := list.Items[i].DeepCopy()
			p, ok := byName[got.Name]
			if !ok || settled[got.Name] || got.Status.Phase != corev1.PodRunning || len(got.Status.ContainerStatuses) != len(p.containers) {
				continue
			}
			settled[got.Name] = true
			g.Go(func() error { return settlePod(gctx, ns, got, p) })
		}
		return len(settled) == len(pods), nil
	})
	gerr := g.Wait()
	if err != nil {
		t.Fatalf("waiting for the pods of %s to run (%d of %d do): %v", ns, len(settled), len(pods), err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
}

// settlePod gives a pod found running its container IDs, starting from got as listed, and waits
// until its logs are served.
func settlePod(ctx context.Context, ns string, got *corev1.Pod, p pod) error {
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			var err error
			if got, err = client.CoreV1().Pods(ns).Get(ctx, p.name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		first = false
		kwok.SetContainerIDs(&got.Status)
		_, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("setting the container IDs of %s/%s: %w", ns, p.name, err)
	}
	for _, c := range p.containers {
		if err := kwok.WaitServed(ctx, client, ns, p.name, c.name, false); err != nil {
			return err
		}
	}
	return nil
}

// loggingPods are one-container pods (container app) whose logs the test appends to in rounds,
// keeping what each pod logged.
type loggingPods struct {
	names []string
	logs  map[string]*criLog
	want  map[string]string
}

// newLoggingPods creates n pods in ns, each with three lines logged at start.
func newLoggingPods(t *testing.T, ns string, n int) *loggingPods {
	t.Helper()
	lp := &loggingPods{logs: map[string]*criLog{}, want: map[string]string{}}
	var pods []pod
	for i := range n {
		name := fmt.Sprintf("p%03d", i)
		lp.names = append(lp.names, name)
		lp.logs[name] = newLog(t).add(at(0, 0), seq(name+"-a", 3)...)
		lp.want[name] = lines(seq(name+"-a", 3)...)
		pods = append(pods, pod{name: name, containers: []container{{name: "app", log: lp.logs[name]}}})
	}
	start := time.Now()
	createPods(t, ns, pods)
	t.Logf("%d pods created and served in %s", n, time.Since(start).Round(time.Second))
	return lp
}

// round appends a round of lines to every pod's log: two of its own, and one that every round
// repeats (the same text, another timestamp), which a resume must neither skip nor double.
func (lp *loggingPods) round(k int) {
	for _, name := range lp.names {
		texts := append(seq(fmt.Sprintf("%s-r%d", name, k), 2), "tick")
		lp.logs[name].add(at(k, 0), texts...)
		lp.want[name] += lines(texts...)
	}
}

// pull runs kubectl logexport pull from dest into dir.
func pull(env []string, dest, dir string) error {
	c := pluginCmd(env, "pull", dest, "-d", dir)
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl logexport pull %s: %w\n%s", dest, err, clip(string(out)))
	}
	return nil
}

// differing lists the pods whose pulled log in dir is not what they logged, with what is there.
func (lp *loggingPods) differing(dir, ns string) []string {
	var out []string
	for _, name := range lp.names {
		got, err := os.ReadFile(filepath.Join(dir, ns, name, "app.log"))
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", name, err))
		} else if string(got) != lp.want[name] {
			out = append(out, fmt.Sprintf("%s (shard %d/2, %d/3): %d bytes, want %d: %q", name, shard.Of(ns, name, 2), shard.Of(ns, name, 3), len(got), len(lp.want[name]), clip(string(got))))
		}
	}
	return out
}

// waitPulled pulls dest into dir (incrementally) until every pod's log there is what it logged.
func (lp *loggingPods) waitPulled(t *testing.T, env []string, dest, dir, ns string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		// Until the followers start, the bucket holds no export.
		err := pull(env, dest, dir)
		diff := lp.differing(dir, ns)
		if err == nil && len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatal(err)
			}
			t.Fatalf("after %s, %d of %d pods' pulled logs are not what they logged, like:\n%s", timeout, len(diff), len(lp.names), strings.Join(diff[:min(5, len(diff))], "\n"))
		}
		time.Sleep(time.Second)
	}
}

// checkPulled pulls dest into a new directory and checks that every pod's log is what it logged:
// every line once, in order.
func (lp *loggingPods) checkPulled(t *testing.T, env []string, dest, ns string) {
	t.Helper()
	dir := t.TempDir()
	if err := pull(env, dest, dir); err != nil {
		t.Fatal(err)
	}
	if diff := lp.differing(dir, ns); len(diff) > 0 {
		t.Fatalf("%d of %d pods' pulled logs are not what they logged, like:\n%s", len(diff), len(lp.names), strings.Join(diff[:min(5, len(diff))], "\n"))
	}
}

// checkSegments checks the segment objects of every pod's log: together they hold its bytes
// exactly once, from 0 to what it logged, no two overlapping, none left over by a run that was
// killed between a segment and its checkpoint.
func (lp *loggingPods) checkSegments(t *testing.T, dest, ns string) {
	t.Helper()
	b := bucketClient(t, dest)
	type span struct {
		start, end int64
		key        string
	}
	spans := map[string][]span{}
	for _, key := range keys(t, b, dest, "/logs/"+ns+"/") {
		_, start, ok1 := bucket.SegmentDay(key)
		_, end, ok2 := bucket.SegmentEnd(key)
		parts := strings.Split(key, "/")
		if !ok1 || !ok2 || len(parts) < 5 {
			t.Fatalf("%s is not a segment key", key)
		}
		// PREFIX/logs/NS/POD/CONTAINER/DAY/START-END.log.gz
		podName := parts[len(parts)-4]
		spans[podName] = append(spans[podName], span{start, end, key})
	}
	segments := 0
	for _, name := range lp.names {
		ss := spans[name]
		segments += len(ss)
		sort.Slice(ss, func(i, j int) bool { return ss[i].start < ss[j].start })
		var at int64
		for _, s := range ss {
			if s.start != at {
				t.Fatalf("%s/%s: segment %s starts at byte %d, the one before ends at %d (segments: %v)", ns, name, s.key, s.start, at, ss)
			}
			at = s.end
		}
		if want := int64(len(lp.want[name])); at != want {
			t.Fatalf("%s/%s: the segments end at byte %d, the log has %d (segments: %v)", ns, name, at, want, ss)
		}
	}
	if len(spans) != len(lp.names) {
		t.Fatalf("segments of %d pods, want %d", len(spans), len(lp.names))
	}
	t.Logf("%d segment objects for %d pods", segments, len(lp.names))
}

// checkpointRuns returns, per pod, the run that saved its checkpoint in the bucket.
func checkpointRuns(t *testing.T, b objstore.Bucket, dest, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for _, key := range keys(t, b, dest, "/checkpoints/"+ns+"/") {
		g.Go(func() error {
			data, err := b.Get(ctx, key)
			if err != nil {
				return err
			}
			var c struct{ Run string }
			if err := json.Unmarshal(data, &c); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			podName := filepath.Base(filepath.Dir(key))
			mu.Lock()
			out[podName] = c.Run
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tail is what a failed test shows of a follower's stderr: every line that says a problem or a
// lease, then the end, at most n bytes of it.
func tail(s string, n int) string {
	var said []string
	for _, l := range strings.Split(s, "\n") {
		if notable.MatchString(l) {
			said = append(said, l)
		}
	}
	if len(s) > n {
		s = "... " + s[len(s)-n:]
	}
	return strings.Join(said[:min(len(said), 50)], "\n") + "\n---\n" + s
}

var notable = regexp.MustCompile(`(?i)error|warning|lost|waiting|took the lease|fail`)

// waitStderr waits until a follower's stderr matches re.
func waitStderr(t *testing.T, f *follower, re *regexp.Regexp, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !re.MatchString(f.stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the follower never said %s (%s):\n%s", what, re, clip(f.stderr.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three followers share 300 pods and write into one bucket while the pods log. One is SIGKILLed
// mid-stream and started again: it waits until its lease expires, takes it over and goes on from
// the checkpoints in the bucket. In the end every pod's pulled log holds every line it logged,
// once, in order, and its segment objects hold each byte once.
func TestBucketShardsFollow300(t *testing.T) {
	ns := newNamespace(t)
	dest, env := bucketDest(t)
	const total, pods = 3, 300
	lp := newLoggingPods(t, ns, pods)
	args := func(i int) []string {
		// kwok needs an inotify instance per followed stream: 3 x 30 stay under the 128 CI
		// machines allow, and each shard's 100 containers take turns.
		return shardArgs(ns, dest, i, total, "--segment-interval", "1s", "--max-log-requests", "30",
			// Renewals on a loaded 2-core machine: a 2 s lease leaves 1.3 s to renew.
			"--lease-duration", "5s")
	}
	followers := make([]*follower, total)
	for i := range total {
		followers[i] = startFollowEnv(t, env, args(i)...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, f := range followers {
				t.Logf("follower %d's stderr:\n%s", i, tail(f.stderr.String(), 3000))
			}
		}
	})
	pulled := t.TempDir()
	start := time.Now()
	lp.waitPulled(t, env, dest, pulled, ns, 3*time.Minute)
	t.Logf("every pod's first lines in the bucket after %s", time.Since(start).Round(time.Second))
	lp.round(1)
	time.Sleep(time.Second)
	lp.round(2)
	time.Sleep(time.Second)

	const victim = 1
	followers[victim].kill()
	// Logged while nobody follows shard 1: its next holder reads them from the checkpoints.
	lp.round(3)
	followers[victim] = startFollowEnv(t, env, args(victim)...)
	waitStderr(t, followers[victim], regexp.MustCompile(`waiting: the lease `+ns+`/logexport-[0-9a-f]{16}-1 for shard 1/3 is held by [^ ]+\n`), "that it waits for the killed holder's lease")
	lp.round(4)
	waitStderr(t, followers[victim], regexp.MustCompile(`took the lease `+ns+`/logexport-[0-9a-f]{16}-1 for shard 1/3\n`), "that it took the lease")
	lp.round(5)
	time.Sleep(time.Second)
	lp.round(6)
	start = time.Now()
	lp.waitPulled(t, env, dest, pulled, ns, 3*time.Minute)
	t.Logf("every pod's lines in the bucket %s after the last round", time.Since(start).Round(time.Second))

	for _, f := range followers {
		f.stop(syscall.SIGTERM)
	}
	lp.checkPulled(t, env, dest, ns)
	lp.checkSegments(t, dest, ns)
	// Each pod's last checkpoint was saved by a run of the shard its name hashes to, and every
	// pod got lines after the restart: one run per shard, the killed one's replaced.
	if runs := runsOf(t, dest, ns, total); len(runs) != total {
		t.Fatalf("the checkpoints were saved by %d runs, want %d: %v", len(runs), total, runs)
	}
}

// runsOf returns the runs that saved the pods' checkpoints, and fails the test unless each
// saved only checkpoints of pods of one shard of total; it returns the shard of each run.
func runsOf(t *testing.T, dest, ns string, total int) map[string]int {
	t.Helper()
	shards := map[string]int{}
	for name, run := range checkpointRuns(t, bucketClient(t, dest), dest, ns) {
		s := shard.Of(ns, name, total)
		if prev, ok := shards[run]; ok && prev != s {
			t.Fatalf("run %s saved checkpoints of pods of shards %d/%d and %d/%d", run, prev, total, s, total)
		}
		shards[run] = s
	}
	return shards
}

// The shard count changes from 2 to 3 while 20 pods log into a bucket: the three replicas of
// the new count wait while those of the old one hold their leases (nothing of theirs is saved
// meanwhile), take over once those stopped, and go on from the checkpoints. Every line once.
func TestBucketShardCountChange(t *testing.T) {
	ns := newNamespace(t)
	dest, env := bucketDest(t)
	lp := newLoggingPods(t, ns, 20)
	args := func(i, total int) []string {
		return shardArgs(ns, dest, i, total, "--segment-interval", "1s", "--lease-duration", "5s")
	}
	var old, next []*follower
	t.Cleanup(func() {
		if t.Failed() {
			for i, f := range append(append([]*follower(nil), old...), next...) {
				t.Logf("follower %d's stderr:\n%s", i, tail(f.stderr.String(), 3000))
			}
		}
	})
	for i := range 2 {
		old = append(old, startFollowEnv(t, env, args(i, 2)...))
	}
	pulled := t.TempDir()
	lp.waitPulled(t, env, dest, pulled, ns, 60*time.Second)
	lp.round(1)

	for i := range 3 {
		next = append(next, startFollowEnv(t, env, args(i, 3)...))
	}
	disagree := regexp.MustCompile(`waiting: the leases of the destination disagree on --total-shards: this run has 3, logexport-[0-9a-f]{16}-[01] \(held by [^ ]+\) has 2`)
	for _, f := range next {
		waitStderr(t, f, disagree, "that it waits for the shard counts to agree")
	}
	lp.round(2)
	lp.waitPulled(t, env, dest, pulled, ns, 60*time.Second)
	if runs := runsOf(t, dest, ns, 2); len(runs) != 2 {
		t.Fatalf("while the replicas of 2 shards hold their leases, the checkpoints were saved by %d runs, want their 2: %v", len(runs), runs)
	}

	for _, f := range old {
		f.stop(syscall.SIGTERM)
	}
	// Logged while the new replicas take over: they read it from the old ones' checkpoints.
	lp.round(3)
	for _, f := range next {
		waitStderr(t, f, regexp.MustCompile(`took the lease `+ns+`/logexport-[0-9a-f]{16}-[012] for shard [012]/3\n`), "that it took its lease")
	}
	lp.round(4)
	time.Sleep(time.Second)
	lp.round(5)
	lp.waitPulled(t, env, dest, pulled, ns, 60*time.Second)
	for _, f := range next {
		f.stop(syscall.SIGTERM)
	}
	lp.checkPulled(t, env, dest, ns)
	lp.checkSegments(t, dest, ns)
	// Every pod got lines after the change: its last checkpoint is a new replica's.
	if runs := runsOf(t, dest, ns, 3); len(runs) != 3 {
		t.Fatalf("after the change, the checkpoints were saved by %d runs, want the 3 new replicas': %v", len(runs), runs)
	}
}
