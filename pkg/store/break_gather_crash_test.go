package store_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/store"
)

// TestBreakGatherCrashConsistency is TestCrashConsistency's runs with GatherCommits on (as
// openDir sets it for the export's three log requests): gathering only delays the start of a
// round, so every state a crash can leave must recover exactly as without it.
func TestBreakGatherCrashConsistency(t *testing.T) {
	t.Cleanup(store.SetCompactMin(4))
	perPoint := *crashStates
	if testing.Short() {
		perPoint = min(perPoint, 6)
	}
	for _, tt := range []struct{ timestamps, syncfs bool }{{false, false}, {true, true}} {
		t.Run(fmt.Sprint("timestamps=", tt.timestamps, ",syncfs=", tt.syncfs), func(t *testing.T) {
			opts := []store.Option{store.SyncFSMin(math.MaxInt)}
			if tt.syncfs {
				if runtime.GOOS != "linux" {
					t.Skip("no syncfs")
				}
				opts = []store.Option{store.SyncFSMin(1)}
			}
			opts = append(opts, store.GatherCommits(6, 20*time.Millisecond))
			src, client := serveSource(t)
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(*crashSeed, 7))
			steps := []func(){
				func() { src.grow(1, 3, "ns1/a/app", "ns1/b/app", "ns2/c/app", "ns1/e/app") },
				func() { src.grow(1, 2, "ns1/a/app"); src.grow(2, 2, "ns1/a/app", "ns2/c/app", "ns1/d/app") },
				func() { src.grow(3, 2, "ns1/a/app", "ns1/b/app", "ns1/d/app", "ns1/e/app") },
				func() { src.rotate("ns2/c/app"); src.grow(4, 2, "ns2/c/app", "ns1/a/app") },
			}
			for run, step := range steps {
				step()
				rec, err := store.NewRecorder(dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := src.export(client, dir, fmt.Sprint("run-", run+1), tt.timestamps, append(opts, rec.Option())...); err != nil {
					t.Fatalf("run %d: %v", run+1, err)
				}
				want := src.want(tt.timestamps)
				checkFiles(t, dir, want)
				n := 0
				rec.CrashStates(perPoint, rng, func(st store.CrashState) bool {
					n++
					crashed := materialize(t, st)
					_, err := checkDurable(crashed, want)
					if err == nil {
						err = src.export(client, crashed, "recovery", tt.timestamps, store.NoSync())
					}
					if err == nil {
						err = compareFiles(crashed, want)
					}
					if err == nil {
						err = src.checkRecords(crashed, run+1)
					}
					if err != nil {
						t.Errorf("run %d, %s\nthe next run: %v\nrecorded operations:\n%s", run+1, st, err, rec.Trace())
						return false
					}
					os.RemoveAll(filepath.Dir(crashed))
					return true
				})
				t.Logf("run %d: %d operations, %d crash states, each recovered exactly", run+1, rec.Ops(), n)
				if t.Failed() {
					return
				}
			}
		})
	}
}
