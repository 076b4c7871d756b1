package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

var (
	crashStates = flag.Int("crash-states", 24, "crash states checked per crash point at most (sampled beyond)")
	crashSeed   = flag.Uint64("crash-seed", 1, "seed of the sampling of crash states")
)

// source serves container logs as the kubelet does through the API server: each line with its
// timestamp, sinceTime (whole seconds) filtering each line on its own.
type source struct {
	mu   sync.Mutex
	logs map[string][]line // by namespace/pod/container
	// from is where the served part of a container's log begins: a rotation leaves the lines
	// before it stored but no longer served.
	from map[string]int
	// rotated are the containers rotated, whose gap runs report and keep; a rotated
	// container runs as a new instance from then on, and its earlier ones are not served.
	rotated map[string]bool
	// full lists the containers asked for their whole log (no sinceTime).
	full map[string]bool
}

type line struct {
	ts   time.Time
	text string
}

var (
	logPath = regexp.MustCompile(`^/api/v1/namespaces/([^/]+)/pods/([^/]+)/log$`)
	podPath = regexp.MustCompile(`^/api/v1/namespaces/([^/]+)/pods/([^/]+)$`)
)

func (s *source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := podPath.FindStringSubmatch(r.URL.Path); m != nil {
		// The status an export asks for to prove which instance served a stream.
		pod := corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Namespace: m[1], Name: m[2], UID: types.UID("uid-" + m[2])}}
		for _, t := range s.targets() {
			if t.Namespace == m[1] && t.Pod == m[2] {
				pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, *t.Status)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&pod)
		return
	}
	m := logPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("sinceTime"); v != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	tail := -1
	if v := q.Get("tailLines"); v != "" {
		var err error
		if tail, err = strconv.Atoi(v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if since.IsZero() && tail < 0 && s.full != nil {
		s.full[m[1]+"/"+m[2]+"/"+q.Get("container")] = true
	}
	if q.Get("previous") == "true" {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"BadRequest","code":400,"message":"previous terminated container not found"}`, http.StatusBadRequest)
		return
	}
	key := m[1] + "/" + m[2] + "/" + q.Get("container")
	lines := s.logs[key][s.from[key]:]
	if tail >= 0 && tail < len(lines) {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		if !l.ts.Before(since) {
			fmt.Fprintf(w, "%s %s\n", l.ts.Format(kubeletLayout), l.text)
		}
	}
}

var t0 = time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)

// kubeletLayout is how a kubelet timestamps the lines it serves: nine fractional digits, always.
const kubeletLayout = "2006-01-02T15:04:05.000000000Z07:00"

// grow appends n lines to each container's log, some of them identical and within one second.
func (s *source) grow(step, n int, containers ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range containers {
		for i := range n {
			ts := t0.Add(time.Duration(step)*time.Second + time.Duration(i%2)*time.Millisecond)
			s.logs[c] = append(s.logs[c], line{ts, fmt.Sprintf("%s line %d.%d", c, step, i/2)})
		}
	}
}

// rotate starts a new instance of a container whose earlier ones are no longer served (it
// restarted twice, say): a run finds a gap from the last stored line to the new instance's first
// (nothing is lost here: the run before stored everything).
func (s *source) rotate(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from[c] = len(s.logs[c])
	s.rotated[c] = true
}

func (s *source) startCounting() {
	s.mu.Lock()
	s.full = map[string]bool{}
	s.mu.Unlock()
}

func (s *source) stopCounting() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	full := s.full
	s.full = nil
	return full
}

// want is the file each container's log must be.
func (s *source) want(timestamps bool) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	files := map[string]string{}
	for c, lines := range s.logs {
		var b strings.Builder
		for _, l := range lines {
			if timestamps {
				b.WriteString(l.ts.Format(kubeletLayout) + " ")
			}
			b.WriteString(l.text + "\n")
		}
		files[c] = b.String()
	}
	return files
}

func (s *source) targets() []target.Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts []target.Target
	for c := range s.logs {
		p := strings.Split(c, "/")
		id := "containerd://" + c
		if s.rotated[c] {
			id += "-2"
		}
		st := &corev1.ContainerStatus{Name: p[2], ContainerID: id,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}}
		ts = append(ts, target.Target{Namespace: p[0], Pod: p[1], PodUID: "uid-" + p[1], Container: p[2], Status: st})
	}
	return ts
}

// export runs one export of every container into dir, as a run of the command does, with its
// start and end in the run journal. A gap is an error unless its container was rotated.
func (s *source) export(client kubernetes.Interface, dir, id string, timestamps bool, opts ...store.Option) error {
	d, err := store.Open(dir, timestamps, opts...)
	if err != nil {
		return err
	}
	run := store.Run{ID: id, Start: t0}
	var errs []string
	if err := d.StartRun(run); err != nil {
		errs = append(errs, err.Error())
	}
	e := &export.Exporter{Client: client, Dest: d, Options: export.Options{Timestamps: timestamps}}
	for _, r := range e.ExportAll(context.Background(), s.targets(), 3, nil) {
		if r.Err != nil {
			errs = append(errs, r.Err.Error())
		}
		for _, g := range r.Gaps {
			if !s.rotated[r.Key()] {
				errs = append(errs, fmt.Sprintf("%s/%s/%s: %s", r.Namespace, r.Pod, r.Container, g))
			}
		}
	}
	code := 0
	run.End, run.ExitCode = &t0, &code
	if err := d.EndRun(run); err != nil {
		errs = append(errs, err.Error())
	}
	if err := d.Close(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// checkRecords checks what status reads after a crash state was recovered: every run before the
// crashed one ended, the crashed one ended or shows as killed, the run that recovered it ended, no
// line of the journal or a gap file is unreadable; and the gap of each rotated container is kept
// (a checkpoint past it never reaches the disk without it), from where its log stopped being
// served to the first line after.
func (s *source) checkRecords(dir string, crashed int) error {
	inv, err := store.Inspect(dir)
	if err != nil {
		return err
	}
	if len(inv.Warnings) > 0 {
		return fmt.Errorf("warnings: %v", inv.Warnings)
	}
	states := map[string]string{}
	for _, r := range inv.Runs {
		states[r.ID] = r.State
	}
	for i := 1; i < crashed; i++ {
		if st := states[fmt.Sprintf("run-%d", i)]; st != store.RunEnded {
			return fmt.Errorf("run-%d, before the crash, is %q in the journal: %+v", i, st, inv.Runs)
		}
	}
	if st := states[fmt.Sprintf("run-%d", crashed)]; st != store.RunEnded && st != store.RunKilled && st != "" {
		return fmt.Errorf("the crashed run is %q: %+v", st, inv.Runs)
	}
	if last := inv.Runs[len(inv.Runs)-1]; last.State != store.RunEnded {
		return fmt.Errorf("the last run is %q: %+v", last.State, inv.Runs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range inv.Logs {
		c := l.Namespace + "/" + l.Pod + "/" + l.Container
		if !s.rotated[c] {
			if len(l.Gaps) > 0 {
				return fmt.Errorf("%s has gaps %+v", c, l.Gaps)
			}
			continue
		}
		lines := s.logs[c]
		// From the second of the newest stored line (a line lost after it may carry a time a
		// little before it) to the next stored line, a later instance's.
		from, to := lines[s.from[c]-1].ts.Truncate(time.Second), lines[s.from[c]].ts
		if len(l.Gaps) == 0 {
			return fmt.Errorf("the gap of %s is lost", c)
		}
		for _, g := range l.Gaps {
			if !g.From.Equal(from) || g.To == nil || !g.To.Equal(to) || g.Run == "" {
				return fmt.Errorf("gap of %s %+v, want from %s to %s", c, g, from, to)
			}
		}
	}
	return nil
}

// TestCrashConsistency records runs of the real export and checks every state a crash could
// leave at every point of each (sampled where there are too many): the next run must recover by
// itself, refusing nothing, and leave every file exactly the lines served, each once, in order.
func TestCrashConsistency(t *testing.T) {
	t.Cleanup(store.SetCompactMin(4)) // so that the third run rewrites a checkpoint file
	perPoint := *crashStates
	if testing.Short() {
		perPoint = min(perPoint, 6)
	}
	// gather: the rounds wait for more commits, as a one-shot run's do (GatherCommits); that only
	// delays a round's start, so every state a crash can leave must recover as without it.
	for _, tt := range []struct{ timestamps, syncfs, gather bool }{
		{false, false, false}, {true, false, false}, {false, true, false}, {true, true, false},
		{false, false, true}, {true, true, true},
	} {
		timestamps := tt.timestamps
		t.Run(fmt.Sprint("timestamps=", timestamps, ",syncfs=", tt.syncfs, ",gather=", tt.gather), func(t *testing.T) {
			t.Parallel()
			// Every round of commits syncs with one syncfs (where the system has it), or every
			// one file by file.
			opts := []store.Option{store.SyncFSMin(math.MaxInt)}
			if tt.syncfs {
				if runtime.GOOS != "linux" {
					t.Skip("no syncfs")
				}
				opts = []store.Option{store.SyncFSMin(1)}
			}
			if tt.gather {
				opts = append(opts, store.GatherCommits(6, 20*time.Millisecond))
			}
			src, client := serveSource(t)
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(*crashSeed, 0))
			steps := []func(){
				// the first run into an empty directory
				func() { src.grow(1, 3, "ns1/a/app", "ns1/b/app", "ns2/c/app") },
				// more lines, one second shared with the run before, and a new container
				func() { src.grow(1, 2, "ns1/a/app"); src.grow(2, 2, "ns1/a/app", "ns2/c/app", "ns1/d/app") },
				// enough saves for ns1's checkpoint file to be rewritten
				func() { src.grow(3, 2, "ns1/a/app", "ns1/b/app", "ns1/d/app") },
				// an instance whose predecessors are not served: the run finds a gap and keeps
				// it with the checkpoint past it
				func() { src.rotate("ns2/c/app"); src.grow(4, 2, "ns2/c/app", "ns1/a/app") },
			}
			states := 0
			for run, step := range steps {
				step()
				rec, err := store.NewRecorder(dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := src.export(client, dir, fmt.Sprint("run-", run+1), timestamps, append(opts, rec.Option())...); err != nil {
					t.Fatalf("run %d: %v", run+1, err)
				}
				if n := rec.SyncFSOps(); tt.syncfs && n == 0 {
					t.Fatalf("run %d synced no round with syncfs:\n%s", run+1, rec.Trace())
				}
				want := src.want(timestamps)
				checkFiles(t, dir, want)
				n := 0
				rec.CrashStates(perPoint, rng, func(st store.CrashState) bool {
					n++
					crashed := materialize(t, st)
					stored, err := checkDurable(crashed, want)
					if err == nil {
						src.startCounting()
						err = src.export(client, crashed, "recovery", timestamps, store.NoSync())
						if full := src.stopCounting(); err == nil {
							// A stored log is resumed, never fetched again from its start (a
							// new instance's log is read from its own start).
							for c := range stored {
								if full[c] && !src.rotated[c] {
									err = fmt.Errorf("%s was fetched again from its start", c)
								}
							}
						}
					}
					if err == nil {
						err = compareFiles(crashed, want)
					}
					if err == nil {
						err = src.checkRecords(crashed, run+1)
					}
					if err == nil {
						// and the run after it reads what that run saved
						err = src.export(client, crashed, "after-recovery", timestamps, store.NoSync())
					}
					if err != nil {
						t.Errorf("run %d, %s\nthe next run: %v\nrecorded operations:\n%s", run+1, st, err, rec.Trace())
						return false
					}
					os.RemoveAll(filepath.Dir(crashed))
					return true
				})
				t.Logf("run %d: %d operations, %d crash states, each recovered exactly", run+1, rec.Ops(), n)
				states += n
				if t.Failed() {
					return
				}
			}
			t.Logf("%d crash states in all", states)
		})
	}
}

// TestCrashRemovedLogReexport: a log removed by hand while its checkpoint stayed is exported
// again from its start, by a run that may be killed at any point, before or after that export's
// first save. The run after must leave every log exactly the lines served, each once, in order:
// never the new export taken in under the old checkpoint, cut at its size into other lines.
func TestCrashRemovedLogReexport(t *testing.T) {
	perPoint := *crashStates
	if testing.Short() {
		perPoint = min(perPoint, 6)
	}
	for _, tt := range []struct {
		name       string
		timestamps bool
		// removed are the logs removed after the first run, grown the lines the second serves.
		removed, grown []string
	}{
		{"one of a namespace", false, []string{"ns1/a/app"}, []string{"ns1/a/app", "ns1/b/app"}},
		{"one of a namespace, timestamps", true, []string{"ns1/a/app"}, []string{"ns1/a/app", "ns1/b/app"}},
		{"nothing new served", false, []string{"ns1/b/app"}, nil},
		{"two namespaces", true, []string{"ns1/a/app", "ns2/c/app"}, []string{"ns2/c/app"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []store.Option{store.SyncFSMin(math.MaxInt)}
			src, client := serveSource(t)
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(*crashSeed, 0))
			src.grow(1, 3, "ns1/a/app", "ns1/b/app", "ns2/c/app")
			if err := src.export(client, dir, "run-1", tt.timestamps, opts...); err != nil {
				t.Fatalf("run 1: %v", err)
			}
			before, err := readCheckpointFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			old := map[string]store.Checkpoint{}
			for _, c := range tt.removed {
				old[c] = before[c]
				if err := os.Remove(filepath.Join(dir, filepath.FromSlash(c)+".log")); err != nil {
					t.Fatal(err)
				}
			}
			if len(tt.grown) > 0 {
				src.grow(2, 2, tt.grown...)
			}
			rec, err := store.NewRecorder(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := src.export(client, dir, "run-2", tt.timestamps, append(opts, rec.Option())...); err != nil {
				t.Fatalf("run 2: %v", err)
			}
			want := src.want(tt.timestamps)
			checkFiles(t, dir, want)
			n := 0
			rec.CrashStates(perPoint, rng, func(st store.CrashState) bool {
				n++
				crashed := materialize(t, st)
				stored, err := checkDurableBut(crashed, want, old)
				if err == nil {
					src.startCounting()
					err = src.export(client, crashed, "recovery", tt.timestamps, store.NoSync())
					if full := src.stopCounting(); err == nil {
						for c := range stored {
							if full[c] {
								err = fmt.Errorf("%s was fetched again from its start", c)
							}
						}
					}
				}
				if err == nil {
					err = compareFiles(crashed, want)
				}
				if err == nil {
					err = src.checkRecords(crashed, 2)
				}
				if err == nil {
					err = src.export(client, crashed, "after-recovery", tt.timestamps, store.NoSync())
				}
				if err == nil {
					err = compareFiles(crashed, want)
				}
				if err != nil {
					t.Errorf("%s\nthe next run: %v\nrecorded operations:\n%s", st, err, rec.Trace())
					return false
				}
				os.RemoveAll(filepath.Dir(crashed))
				return true
			})
			if n == 0 {
				t.Fatal("no crash state")
			}
			t.Logf("%d operations, %d crash states, each recovered exactly", rec.Ops(), n)
		})
	}
}

func checkFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	if err := compareFiles(dir, want); err != nil {
		t.Fatal(err)
	}
}

// compareFiles checks that dir holds exactly the logs in want.
func compareFiles(dir string, want map[string]string) error {
	for c, w := range want {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(c)+".log"))
		if err != nil {
			return err
		}
		if string(b) != w {
			return fmt.Errorf("%s is\n%q\nwant\n%q", c, b, w)
		}
	}
	return nil
}

// checkDurable checks, in a crash state, that what each checkpoint says is stored is there: the
// log (or the new log under its temporary name, which the next run renames) begins with the
// bytes the checkpoint covers. A run that found less would have to export them again, and the
// kubelet may no longer serve them.
func checkDurable(dir string, want map[string]string) (stored map[string]bool, err error) {
	return checkDurableBut(dir, want, nil)
}

// checkDurableBut is checkDurable for a directory some logs of which were removed by hand, their
// checkpoints staying: a checkpoint in old (by container) is that of a removed log, which covers
// nothing any more.
func checkDurableBut(dir string, want map[string]string, old map[string]store.Checkpoint) (stored map[string]bool, err error) {
	all, err := readCheckpointFiles(dir)
	if err != nil {
		return nil, err
	}
	stored = map[string]bool{}
	for c, cp := range all {
		if cp.Instance == "" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(c)+".log")
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			b, err = os.ReadFile(filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".new"))
		}
		if o, ok := old[c]; ok && os.IsNotExist(err) && cp.Instance == o.Instance && cp.Size == o.Size && cp.Hash == o.Hash {
			continue // the removed log's, which the next run exports again from the start
		}
		stored[c] = true
		if err != nil {
			return nil, fmt.Errorf("the checkpoint of %s covers %d bytes: %w", c, cp.Size, err)
		}
		if int64(len(b)) < cp.Size || string(b[:cp.Size]) != want[c][:cp.Size] {
			return nil, fmt.Errorf("the checkpoint of %s covers %d bytes, the log holds %q", c, cp.Size, b)
		}
	}
	return stored, nil
}

// readCheckpointFiles reads the last checkpoint of each container (namespace/pod/container) from
// the complete lines of the checkpoint files.
func readCheckpointFiles(dir string) (map[string]store.Checkpoint, error) {
	cps := map[string]store.Checkpoint{}
	files, _ := filepath.Glob(filepath.Join(dir, ".logexport", "checkpoints", "*.jsonl"))
	for _, f := range files {
		ns := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 || bytes.IndexByte(data[:i], 0) >= 0 {
				break
			}
			var r struct {
				Pod, Container string
				store.Checkpoint
			}
			if err := json.Unmarshal(data[:i], &r); err != nil {
				return nil, fmt.Errorf("%s: %q: %w", f, data[:i], err)
			}
			cps[ns+"/"+r.Pod+"/"+r.Container] = r.Checkpoint
			data = data[i+1:]
		}
	}
	return cps, nil
}

// materialize writes a crash state into a new directory and returns its path.
func materialize(t *testing.T, st store.CrashState) string {
	t.Helper()
	crashed := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(crashed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := st.Materialize(crashed); err != nil {
		t.Fatal(err)
	}
	return crashed
}

// serveSource serves a new source of logs to a client until the test ends.
func serveSource(t *testing.T) (*source, kubernetes.Interface) {
	t.Helper()
	src := &source{logs: map[string][]line{}, from: map[string]int{}, rotated: map[string]bool{}}
	srv := httptest.NewServer(src)
	t.Cleanup(srv.Close)
	return src, kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, QPS: -1})
}
