package bucket_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// TestFollowCrashes follows a container into a bucket with short checkpoint intervals while it
// logs and restarts, and stops each follower at a random moment: cancelled, or dying at a random
// put (as a SIGKILL between a segment and its checkpoint). After each, the bucket's log is a
// prefix of a faultless export into a directory, and no two segments hold the same bytes;
// after a last faultless export the two are equal.
func TestFollowCrashes(t *testing.T) {
	seeds := 16
	if testing.Short() {
		seeds = 4
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) { followSequence(t, seed) })
	}
}

func followSequence(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	var clockMu sync.Mutex
	clock := time.Date(2024, 3, 9, 23, 58, 0, 0, time.UTC)
	tick := func(d time.Duration) time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		clock = clock.Add(d)
		return clock
	}
	srv := logserver.New(t)
	srv.NodeClock = func() time.Time { return tick(0) }
	srv.AddPod("default", "p0", "c")
	client := srv.Client()
	timestamps := rng.Intn(2) == 0
	local, err := store.Open(t.TempDir(), timestamps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Close() })
	mem := objstore.NewMemory()
	ctx := context.Background()
	n, followerPuts := 0, 0
	appendLines := func() {
		var entries []logserver.Entry
		for range 1 + rng.Intn(12) {
			n++
			text := fmt.Sprintf("line %d %s", n, strings.Repeat("z", rng.Intn(60)))
			if rng.Intn(4) == 0 {
				text = "same"
			}
			entries = append(entries, logserver.Entry{Time: tick(time.Duration(rng.Intn(400)) * time.Millisecond), Text: text})
		}
		if rng.Intn(3) == 0 {
			// The start of a line longer than a follower's buffer, which the next entry ends:
			// a follower waits inside it, and its checkpoints keep what it has of it.
			n++
			text := fmt.Sprintf("begun %d %s", n, strings.Repeat("b", 100+rng.Intn(300)))
			entries = append(entries, logserver.Entry{Time: tick(time.Duration(rng.Intn(400)) * time.Millisecond), Partial: true, Text: text})
		}
		srv.Append("default", "p0", "c", entries...)
	}
	exportLocal := func() {
		t.Helper()
		e := &export.Exporter{Client: client, Dest: local, Options: export.Options{Timestamps: timestamps}}
		if res := e.Export(ctx, target.Of(srv.Pod("default", "p0"), "c")); res.Err != nil {
			t.Fatalf("export into the directory: %v", res.Err)
		}
	}
	// behind: the last bucket run did not finish; a restart now would take lines from the API
	// that the directory has and the bucket never will.
	behind := false
	for step := 0; step < 12; step++ {
		appendLines()
		if !behind && rng.Intn(4) == 0 {
			exportLocal()
			tick(time.Second)
			srv.Restart("default", "p0", "c")
			appendLines()
		}
		exportLocal()
		opts := export.Options{Timestamps: timestamps, Follow: true,
			CommitInterval: time.Duration(1+rng.Intn(20)) * time.Millisecond, CommitBytes: int64(64 + rng.Intn(400)), BufferSize: 64 + rng.Intn(128)}
		runCtx, cancel := context.WithCancel(ctx)
		crash := rng.Intn(2) == 0
		puts := mem.Puts
		if crash {
			crashAfter(mem, 1+rng.Intn(6), nil)
		}
		d, err := bucket.Open(runCtx, mem, "logs", timestamps)
		done := make(chan export.Result, 1)
		if err == nil {
			e := &export.Exporter{Client: client, Dest: d, Options: opts}
			go func() { done <- e.Export(runCtx, target.Of(srv.Pod("default", "p0"), "c")) }()
			for range rng.Intn(4) {
				time.Sleep(time.Duration(rng.Intn(15)) * time.Millisecond)
				appendLines()
			}
			time.Sleep(time.Duration(rng.Intn(30)) * time.Millisecond)
			cancel()
			res := <-done
			if res.Err != nil && !errors.Is(res.Err, errCrash) && !errors.Is(res.Err, context.Canceled) {
				t.Fatalf("step %d: the follower: %v", step, res.Err)
			}
		} else if !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		cancel()
		mem.Fail = nil
		followerPuts += mem.Puts - puts
		// A follower stopped either way saved what it had, not what came after.
		behind = true
		exportLocal()
		want, got := readLocal(t, local), readBucket(t, mem, timestamps)
		if !strings.HasPrefix(want, got) {
			t.Fatalf("seed %d step %d: the bucket's log is not a prefix of the directory's:\nbucket: %q\ndir:    %q", seed, step, got, want)
		}
		checkDisjoint(t, mem)
		if rng.Intn(2) == 0 {
			// Catch up, so that the next step may restart the container.
			runBucket(t, ctx, mem, client, export.Options{Timestamps: timestamps, CommitBytes: int64(64 + rng.Intn(400))}, target.Of(srv.Pod("default", "p0"), "c"), timestamps)
			behind = false
		}
	}
	exportLocal()
	runBucket(t, ctx, mem, client, export.Options{Timestamps: timestamps}, target.Of(srv.Pod("default", "p0"), "c"), timestamps)
	if got, want := readBucket(t, mem, timestamps), readLocal(t, local); got != want {
		t.Fatalf("seed %d: after a faultless run the bucket's log differs from the directory's:\nbucket: %q\ndir:    %q", seed, got, want)
	}
	checkDisjoint(t, mem)
	if followerPuts == 0 {
		t.Error("no follower put anything: the sequence tests nothing of following")
	}
}
