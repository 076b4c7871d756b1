package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// With GatherCommits, a round waits for the commits of the other open logs, and only for them:
// it goes as soon as n are queued, when no open log is left to commit, or when the wait is over.
func TestGatherCommits(t *testing.T) {
	for _, tt := range []struct {
		name string
		n    int
		wait time.Duration
		logs int
		// commit is how many of the logs commit, one after the other once the round's leader
		// waits for more; close is how many of the rest are closed after them, without a commit.
		commit, close int
		wantRounds    int
	}{
		{name: "joins until n are queued", n: 4, wait: time.Hour, logs: 6, commit: 4, wantRounds: 1},
		{name: "alone", n: 4, wait: time.Hour, logs: 1, commit: 1, wantRounds: 1},
		{name: "the other logs closed", n: 4, wait: time.Hour, logs: 3, commit: 1, close: 2, wantRounds: 1},
		{name: "the wait is over", n: 4, wait: 10 * time.Millisecond, logs: 2, commit: 1, wantRounds: 1},
		{name: "not asked for", logs: 2, commit: 1, wantRounds: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(t.TempDir(), false, GatherCommits(tt.n, tt.wait))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ls := make([]*Log, tt.logs)
			for i := range ls {
				ls[i] = mustOpenLog(t, d, "ns", fmt.Sprintf("p%d", i), "c")
				if _, err := ls[i].Write([]byte("line\n")); err != nil {
					t.Fatal(err)
				}
				ls[i].EndLine()
			}
			done := make(chan error, tt.logs)
			for i := range tt.commit {
				go func() { done <- ls[i].Finish(Checkpoint{Instance: "i", Lines: 1}) }()
				if i < tt.commit-1 {
					// The next commit comes once this one is queued and the leader waits again.
					waitFor(t, d, func(c *committer) bool { return len(c.queue) == i+1 && c.arrived != nil })
				}
			}
			if tt.close > 0 {
				waitFor(t, d, func(c *committer) bool { return len(c.queue) == tt.commit && c.arrived != nil })
				for _, l := range ls[tt.commit : tt.commit+tt.close] {
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
				}
			}
			awaitCommits(t, d, done, tt.commit, tt.wantRounds)
			for i, l := range ls[:tt.commit] {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if cp := checkpointOf(t, d, "ns", fmt.Sprintf("p%d", i), "c"); cp == nil || cp.Size != 5 {
					t.Errorf("log %d: checkpoint %+v", i, cp)
				}
			}
			for _, l := range ls[tt.commit+tt.close:] {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if n := d.commits.open.Load(); n != 0 {
				t.Errorf("%d logs counted open after all were closed", n)
			}
		})
	}
}

// awaitCommits waits for n commits to return from done, each without an error and within a
// generous bound (a commit that waits for a wake-up that never comes fails the test rather than
// hang it), and checks that they took wantRounds rounds.
func awaitCommits(t *testing.T, d *Dir, done <-chan error, n, wantRounds int) {
	t.Helper()
	for range n {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(time.Minute):
			t.Fatal("a commit still waits for its round")
		}
	}
	d.commits.mu.Lock()
	rounds := d.commits.rounds
	d.commits.mu.Unlock()
	if rounds != wantRounds {
		t.Errorf("%d rounds, want %d", rounds, wantRounds)
	}
}

// waitFor waits until the committer is in the state cond tells (called with its lock held).
func waitFor(t *testing.T, d *Dir, cond func(*committer) bool) {
	t.Helper()
	c := &d.commits
	if err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return cond(c), nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Only Finish waits for company: a Commit (made while its export holds a log request) never
// waits, and one that comes while a leader gathers ends the gathering.
func TestGatherOnlyFinish(t *testing.T) {
	for _, tt := range []struct {
		name string
		// finishFirst: a Finish gathers before the Commit comes.
		finishFirst bool
		wantRounds  int
	}{
		{name: "a commit alone", wantRounds: 1},
		{name: "a commit joins a gathering round and ends it", finishFirst: true, wantRounds: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(t.TempDir(), false, GatherCommits(4, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ls := make([]*Log, 3) // the third stays open without a commit
			for i := range ls {
				ls[i] = mustOpenLog(t, d, "ns", fmt.Sprintf("p%d", i), "c")
				if _, err := ls[i].Write([]byte("line\n")); err != nil {
					t.Fatal(err)
				}
				ls[i].EndLine()
			}
			done := make(chan error, 2)
			n := 1
			if tt.finishFirst {
				n = 2
				go func() { done <- ls[1].Finish(Checkpoint{Instance: "i", Lines: 1}) }()
				waitFor(t, d, func(c *committer) bool { return len(c.queue) == 1 && c.arrived != nil })
			}
			go func() { done <- ls[0].Commit(Checkpoint{Instance: "i", Lines: 1}) }()
			awaitCommits(t, d, done, n, tt.wantRounds)
			for _, l := range ls {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
