package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/shard"
)

// shardArgs are a follower's arguments for shard index of total, its leases in the test's
// namespace and short enough for a killed holder's to expire within the test.
func shardArgs(ns, dir string, index, total int, more ...string) []string {
	return append([]string{"-n", ns, "-d", dir, "--total-shards", fmt.Sprint(total), "--shard-index", fmt.Sprint(index),
		"--lease-namespace", ns, "--lease-duration", "2s"}, more...)
}

// waitOwned waits until exactly one of dirs holds the pod's log, with exactly want, and no other
// dir has anything of the pod; it returns which.
func waitOwned(t *testing.T, dirs []string, ns, pod, want string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var state []string
	for {
		owner, holders := -1, 0
		state = state[:0]
		for i, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, ns, pod)); err == nil {
				holders++
				got, _ := os.ReadFile(filepath.Join(d, ns, pod, "app.log"))
				state = append(state, fmt.Sprintf("dir %d: %q", i, clip(string(got))))
				if string(got) == want {
					owner = i
				}
			}
		}
		if holders == 1 && owner >= 0 {
			return owner
		}
		if holders > 1 {
			t.Fatalf("%s/%s is in %d directories: %v", ns, pod, holders, state)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s never stored %q in exactly one directory: %v", ns, pod, clip(want), state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Three followers split 30 pods: every pod's log ends up in exactly one directory, complete, the
// one of the shard its name hashes to, also the lines logged while they follow.
func TestFollowSharded(t *testing.T) {
	ns := newNamespace(t)
	const total, pods = 3, 30
	logs := map[string]*criLog{}
	names := make([]string, pods)
	for i := range pods {
		name := fmt.Sprintf("p%02d", i)
		names[i] = name
		logs[name] = newLog(t).add(at(0, 0), seq(name+"-a", 3)...)
		createPod(t, ns, pod{name: name, containers: []container{{name: "app", log: logs[name]}}})
	}
	dirs := make([]string, total)
	followers := make([]*follower, total)
	for i := range total {
		dirs[i] = t.TempDir()
		// Ten pods each, four streams each taking turns: the 12 streams CI's inotify instances
		// allow kwok.
		followers[i] = startFollow(t, shardArgs(ns, dirs[i], i, total, "--max-log-requests", "4")...)
	}
	want := map[string]string{}
	perShard := make([]int, total)
	for _, name := range names {
		want[name] = lines(seq(name+"-a", 3)...)
		owner := waitOwned(t, dirs, ns, name, want[name])
		if s := shard.Of(ns, name, total); owner != s {
			t.Fatalf("%s/%s is in the directory of shard %d, its name hashes to %d", ns, name, owner, s)
		}
		perShard[owner]++
	}
	for i, n := range perShard {
		if n == 0 {
			t.Fatalf("shard %d/%d followed no pod: %v", i, total, perShard)
		}
	}
	for _, name := range names {
		logs[name].add(at(1, 0), seq(name+"-b", 2)...)
		want[name] += lines(seq(name+"-b", 2)...)
	}
	for _, name := range names {
		waitOwned(t, dirs, ns, name, want[name])
	}
	for i, f := range followers {
		f.stop(syscall.SIGTERM)
		if !strings.Contains(f.stderr.String(), fmt.Sprintf("shard %d/%d: following %d containers", i, total, perShard[i])) {
			t.Errorf("follower %d's status line does not say its shard and %d containers:\n%s", i, perShard[i], f.stderr)
		}
		if !strings.Contains(f.stderr.String(), fmt.Sprintf("from %d containers into %s (shard %d/%d)", perShard[i], dirs[i], i, total)) {
			t.Errorf("follower %d's summary does not say its shard:\n%s", i, f.stderr)
		}
	}
	for _, name := range names {
		assertFile(t, filepath.Join(dirs[shard.Of(ns, name, total)], ns, name, "app.log"), want[name])
	}
}

// podsOfShard returns n pod names of shard index of total in ns, and n of other shards.
func podsOfShard(ns string, index, total, n int) (mine, others []string) {
	for i := 0; len(mine) < n || len(others) < n; i++ {
		name := fmt.Sprintf("p%02d", i)
		if shard.Of(ns, name, total) == index {
			if len(mine) < n {
				mine = append(mine, name)
			}
		} else if len(others) < n {
			others = append(others, name)
		}
	}
	return mine, others
}

// A second follower of the same shard and directory waits (and says so, once) while the first
// holds the shard's lease; once the first is killed (SIGKILL: its lease expires, nobody releases
// it) the second takes over and goes on from the checkpoints: every line once.
func TestFollowShardTakeover(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	mine, others := podsOfShard(ns, 1, 3, 3)
	logs := map[string]*criLog{}
	want := map[string]string{}
	for _, name := range append(append([]string(nil), mine...), others...) {
		logs[name] = newLog(t).add(at(0, 0), seq(name+"-a", 5)...)
		want[name] = lines(seq(name+"-a", 5)...)
		createPod(t, ns, pod{name: name, containers: []container{{name: "app", log: logs[name]}}})
	}
	args := shardArgs(ns, dir, 1, 3)
	first := startFollow(t, args...)
	for _, name := range mine {
		waitContent(t, filepath.Join(dir, ns, name, "app.log"), want[name])
	}
	second := startFollow(t, args...)
	waiting := regexp.MustCompile(`waiting: the lease ` + ns + `/logexport-[0-9a-f]{16}-1 for shard 1/3 is held by [^ ]+\n`)
	deadline := time.Now().Add(30 * time.Second)
	for !waiting.MatchString(second.stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the second follower never said it waits:\n%s", second.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	add := func(round string) {
		for _, name := range mine {
			logs[name].add(at(len(round), 0), seq(name+"-"+round, 4)...)
			want[name] += lines(seq(name+"-"+round, 4)...)
		}
	}
	add("b")
	for _, name := range mine {
		waitContent(t, filepath.Join(dir, ns, name, "app.log"), want[name])
	}
	first.kill()
	// Logged while nobody follows: the second reads them from the checkpoints the first saved.
	add("cc")
	for _, name := range mine {
		waitContent(t, filepath.Join(dir, ns, name, "app.log"), want[name])
	}
	add("ddd")
	for _, name := range mine {
		waitContent(t, filepath.Join(dir, ns, name, "app.log"), want[name])
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(second.stderr.String(), "shard 1/3: following 3 containers"); {
		if time.Now().After(deadline) {
			t.Fatalf("the second follower's status line never said its shard and 3 containers:\n%s", second.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	second.stop(syscall.SIGTERM)
	for _, name := range mine {
		assertFile(t, filepath.Join(dir, ns, name, "app.log"), want[name])
	}
	for _, name := range others {
		if _, err := os.Stat(filepath.Join(dir, ns, name)); err == nil {
			t.Errorf("%s/%s is not of shard 1/3 and was exported", ns, name)
		}
	}
	out := second.stderr.String()
	if n := strings.Count(out, "waiting:"); n != 1 {
		t.Errorf("the second follower said %d times that it waits, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "took the lease "+ns+"/logexport-") {
		t.Errorf("the second follower never said it took the lease:\n%s", out)
	}
}

// The shard count changes from 2 to 3 (a rollout): a replica of the new count waits while one of
// the old count holds a lease of the destination, and goes on once it stopped. A pod of both
// shards (0 of 2, 2 of 3) is written by one at a time: every line once.
func TestFollowShardCountChange(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	var both string
	for i := 0; both == ""; i++ {
		if name := fmt.Sprintf("p%02d", i); shard.Of(ns, name, 2) == 0 && shard.Of(ns, name, 3) == 2 {
			both = name
		}
	}
	log := newLog(t).add(at(0, 0), seq("a", 5)...)
	want := lines(seq("a", 5)...)
	createPod(t, ns, pod{name: both, containers: []container{{name: "app", log: log}}})
	file := filepath.Join(dir, ns, both, "app.log")
	old := startFollow(t, shardArgs(ns, dir, 0, 2)...)
	waitContent(t, file, want)

	next := startFollow(t, shardArgs(ns, dir, 2, 3)...)
	waiting := regexp.MustCompile(`waiting: the leases of the destination disagree on --total-shards: this run has 3, logexport-[0-9a-f]{16}-0 \(held by [^ ]+\) has 2\n`)
	deadline := time.Now().Add(30 * time.Second)
	for !waiting.MatchString(next.stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the replica of 3 shards never said it waits for the count to agree:\n%s", next.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.add(at(1, 0), seq("b", 5)...)
	want += lines(seq("b", 5)...)
	waitContent(t, file, want)
	// Stopped: it releases its lease, the replica of the new count goes on.
	old.stop(syscall.SIGTERM)
	log.add(at(2, 0), seq("c", 5)...)
	want += lines(seq("c", 5)...)
	waitContent(t, file, want)
	next.stop(syscall.SIGTERM)
	assertFile(t, file, want)
	if !strings.Contains(next.stderr.String(), "took the lease") {
		t.Errorf("the replica of 3 shards never said it took its lease:\n%s", next.stderr)
	}
}
