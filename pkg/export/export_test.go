package export

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// kubelet serves container logs the way the kubelet does through the API server: timestamps
// prefixed, sinceTime (whole seconds) filtering each line on its own timestamp, previous=true
// for the last terminated instance.
type kubelet struct {
	mu       sync.Mutex
	current  []entry
	previous []entry
	// unterminated is a last line still being written.
	unterminated *entry
}

type entry struct {
	ts      time.Time
	text    string
	partial bool // a CRI P entry: the line goes on in the next entry
}

func (k *kubelet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	q := r.URL.Query()
	log := k.current
	if q.Get("previous") == "true" {
		if k.previous == nil {
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"BadRequest","code":400,"message":"previous terminated container not found"}`, http.StatusBadRequest)
			return
		}
		log = k.previous
	}
	var since time.Time
	if s := q.Get("sinceTime"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	// As the kubelet's reader: entries before since are skipped one by one, but a line's start
	// is tracked through them, so the timestamp is written only where a line begins.
	newLine := true
	emit := func(e entry, nl string) {
		if !e.ts.Before(since) {
			if newLine {
				fmt.Fprintf(w, "%s ", e.ts.Format("2006-01-02T15:04:05.000000000Z07:00"))
			}
			fmt.Fprint(w, e.text)
			if !e.partial {
				fmt.Fprint(w, nl)
			}
		}
		newLine = !e.partial
	}
	for _, e := range log {
		emit(e, "\n")
	}
	if k.unterminated != nil && q.Get("previous") != "true" {
		emit(*k.unterminated, "")
	}
}

// addPartial appends a line the runtime split into entries, one per piece, each at its own time.
func (k *kubelet) addPartial(pieces ...entry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, e := range pieces {
		e.partial = i < len(pieces)-1
		k.current = append(k.current, e)
	}
}

func (k *kubelet) add(sec, nsec int, texts ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range texts {
		k.current = append(k.current, entry{ts: ts(sec, nsec), text: s})
	}
}

var t0 = time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)

func ts(sec, nsec int) time.Time { return t0.Add(time.Duration(sec)*time.Second + time.Duration(nsec)) }

// pod is the status the tests move through instance by instance.
type pod struct {
	status corev1.ContainerStatus
	// listed, if set, is the status the next export listed: older than status when the
	// container restarted between the list and the log request.
	listed    *corev1.ContainerStatus
	n         int
	dir, file string
}

// newFixture returns a kubelet, a running container and a function that runs one export of it
// into a directory of its own.
func newFixture(t *testing.T) (*kubelet, *pod, func(Options) Result) {
	k := &kubelet{}
	dir := t.TempDir()
	p := &pod{status: corev1.ContainerStatus{Name: "app"}, dir: dir, file: filepath.Join(dir, "ns", "p", "app.log")}
	p.running(ts(-1000, 0))
	mux := http.NewServeMux()
	mux.Handle("/api/v1/namespaces/ns/pods/p/log", k)
	mux.HandleFunc("/api/v1/namespaces/ns/pods/p", func(w http.ResponseWriter, r *http.Request) {
		// The status as the API server has it now, which an export may have listed earlier.
		k.mu.Lock()
		defer k.mu.Unlock()
		pod := corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid"},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{p.status}}}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&pod)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
	return k, p, func(o Options) Result {
		listed := p.status
		if p.listed != nil {
			listed, p.listed = *p.listed, nil
		}
		return p.export(t, client, o, listed)
	}
}

// export runs one export of the container with listed as the status the run listed.
func (p *pod) export(t *testing.T, client kubernetes.Interface, o Options, listed corev1.ContainerStatus) Result {
	t.Helper()
	{
		d, err := store.Open(p.dir, o.Timestamps)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		e := &Exporter{Client: client, Dest: d, Options: o}
		return e.Export(context.Background(), target.Target{Namespace: "ns", Pod: "p", PodUID: "uid", Container: "app", Status: &listed})
	}
}

// running starts a new instance at start: no instance logs before it starts.
func (p *pod) running(start time.Time) {
	p.n++
	p.status.ContainerID = fmt.Sprintf("containerd://%d", p.n)
	p.status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(start)}}
}

// restart moves the current instance to lastState and its log to previous=true.
func (p *pod) restart(k *kubelet) {
	last := &corev1.ContainerStateTerminated{ContainerID: p.status.ContainerID, StartedAt: p.status.State.Running.StartedAt, ExitCode: 1}
	p.status.LastTerminationState = corev1.ContainerState{Terminated: last}
	p.status.RestartCount++
	k.mu.Lock()
	start := ts(-1000, 0)
	if n := len(k.current); n > 0 {
		start = k.current[n-1].ts.Add(time.Second)
	}
	p.running(start)
	k.previous, k.current, k.unterminated = k.current, nil, nil
	k.mu.Unlock()
}

type step struct {
	name  string
	do    func(k *kubelet, p *pod)
	want  []string // the whole file, line by line
	lines int64    // lines this run adds
	gaps  int
	// since bounds a first export.
	since time.Time
	// listedBefore: the run listed the pods before do happened.
	listedBefore bool
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"repeated identical lines across resumes in one second", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a", "a", "a") }, want: []string{"a", "a", "a"}, lines: 3},
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a", "a") }, want: []string{"a", "a", "a", "a", "a"}, lines: 2},
			{do: func(k *kubelet, p *pod) {}, want: []string{"a", "a", "a", "a", "a"}, lines: 0},
			{do: func(k *kubelet, p *pod) { k.add(0, 1, "a"); k.add(3, 0, "b") }, want: []string{"a", "a", "a", "a", "a", "a", "b"}, lines: 2},
		}},
		{"timestamps going backwards are neither lost nor doubled", []step{
			{do: func(k *kubelet, p *pod) { k.add(5, 0, "x"); k.add(4, 0, "back"); k.add(5, 1, "y") }, want: []string{"x", "back", "y"}, lines: 3},
			// back2 is older than y but in the checkpoint's second, so the API still serves it.
			{do: func(k *kubelet, p *pod) { k.add(5, 0, "back2"); k.add(5, 2, "z") }, want: []string{"x", "back", "y", "back2", "z"}, lines: 2},
		}},
		{"restart: previous tail then the new instance", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a1") }, want: []string{"a1"}, lines: 1},
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a2"); p.restart(k); k.add(9, 0, "b1") }, want: []string{"a1", "a2", "b1"}, lines: 2},
			{do: func(k *kubelet, p *pod) { k.add(9, 0, "b2") }, want: []string{"a1", "a2", "b1", "b2"}, lines: 1},
		}},
		{"first export takes the previous instance too", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a1"); p.restart(k); k.add(9, 0, "b1") }, want: []string{"a1", "b1"}, lines: 2},
		}},
		{"a restart between the list and the log request", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a1", "a2") }, want: []string{"a1", "a2"}, lines: 2},
			{listedBefore: true, do: func(k *kubelet, p *pod) { k.add(1, 0, "a3"); p.restart(k); k.add(9, 0, "b1") },
				want: []string{"a1", "a2", "a3", "b1"}, lines: 2},
			{do: func(k *kubelet, p *pod) { k.add(9, 0, "b2") }, want: []string{"a1", "a2", "a3", "b1", "b2"}, lines: 1},
		}},
		{"a restart between the list and a first export", []step{
			{listedBefore: true, do: func(k *kubelet, p *pod) { k.add(0, 0, "a1"); p.restart(k); k.add(9, 0, "b1") },
				want: []string{"a1", "b1"}, lines: 2},
			{do: func(k *kubelet, p *pod) { k.add(9, 0, "b2") }, want: []string{"a1", "b1", "b2"}, lines: 1},
		}},
		{"a long line whose pieces straddle the checkpoint's second", []step{
			{do: func(k *kubelet, p *pod) {
				k.add(0, 0, "x")
				k.addPartial(entry{ts: ts(0, 5e8), text: "AAA"}, entry{ts: ts(1, 2e8), text: "BBB"})
				k.add(1, 5e8, "y")
			}, want: []string{"x", "AAABBB", "y"}, lines: 3},
			{do: func(k *kubelet, p *pod) { k.add(1, 7e8, "z") }, want: []string{"x", "AAABBB", "y", "z"}, lines: 1},
			{do: func(k *kubelet, p *pod) { k.add(2, 0, "w") }, want: []string{"x", "AAABBB", "y", "z", "w"}, lines: 1},
		}},
		{"a straddling line's tail that looks like a line of the window", []step{
			{do: func(k *kubelet, p *pod) {
				// The tail starts with what parses as a timestamp of the window's second.
				k.addPartial(entry{ts: ts(0, 5e8), text: "AAA"}, entry{ts: ts(1, 2e8), text: "2024-01-01T10:00:01.5Z x"})
				k.add(1, 5e8, "y")
			}, want: []string{"AAA2024-01-01T10:00:01.5Z x", "y"}, lines: 2},
			{do: func(k *kubelet, p *pod) { k.add(1, 7e8, "z") }, want: []string{"AAA2024-01-01T10:00:01.5Z x", "y", "z"}, lines: 1},
		}},
		{"a long line straddling the second of a --since first export", []step{
			{since: ts(1, 0), do: func(k *kubelet, p *pod) {
				k.addPartial(entry{ts: ts(0, 5e8), text: "AAA"}, entry{ts: ts(1, 2e8), text: "BBB"})
				k.add(1, 5e8, "y")
			}, want: []string{"y"}, lines: 1},
		}},
		{"two restarts between runs: a gap", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a1") }, want: []string{"a1"}, lines: 1},
			{do: func(k *kubelet, p *pod) {
				k.add(1, 0, "a2-lost")
				p.restart(k)
				k.add(5, 0, "b1")
				p.restart(k)
				k.add(9, 0, "c1")
			}, want: []string{"a1", "b1", "c1"}, lines: 2, gaps: 1},
		}},
		{"a previous instance whose log is gone: a gap, then the new instance", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a1") }, want: []string{"a1"}, lines: 1},
			{do: func(k *kubelet, p *pod) { k.add(1, 0, "a2"); p.restart(k); k.previous = nil; k.add(9, 0, "b1") }, want: []string{"a1", "b1"}, lines: 1, gaps: 1},
		}},
		{"two restarts, the middle instance's log gone too", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a1") }, want: []string{"a1"}, lines: 1},
			{do: func(k *kubelet, p *pod) {
				p.restart(k)
				k.add(5, 0, "b1")
				p.restart(k)
				k.previous = nil
				k.add(9, 0, "c1")
			}, want: []string{"a1", "c1"}, lines: 1, gaps: 1},
		}},
		{"rotation: a gap, and nothing stored twice", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "x1"); k.add(1, 0, "x2") }, want: []string{"x1", "x2"}, lines: 2},
			{do: func(k *kubelet, p *pod) {
				k.mu.Lock()
				// "lost" was logged, then rotated away with x1 and x2.
				k.current = []entry{{ts: ts(2, 0), text: "x3"}}
				k.mu.Unlock()
			}, want: []string{"x1", "x2", "x3"}, lines: 1, gaps: 1},
			{do: func(k *kubelet, p *pod) { k.add(2, 0, "x4") }, want: []string{"x1", "x2", "x3", "x4"}, lines: 1},
		}},
		{"rotation: a new line with the newest stored timestamp is kept", []step{
			// x2 and x3 share a timestamp, as lines of a burst may; the window (x1, x2, x3) is
			// gone with x1, but the log still serves the stored x2 and x3 before y.
			{do: func(k *kubelet, p *pod) { k.add(1, 0, "x1"); k.add(1, 5, "x2", "x3") }, want: []string{"x1", "x2", "x3"}, lines: 3},
			{do: func(k *kubelet, p *pod) {
				k.mu.Lock()
				k.current = k.current[1:]
				k.mu.Unlock()
				k.add(1, 5, "y")
				k.add(2, 0, "z")
			}, want: []string{"x1", "x2", "x3", "y", "z"}, lines: 2, gaps: 1},
			{do: func(k *kubelet, p *pod) { k.add(2, 0, "w") }, want: []string{"x1", "x2", "x3", "y", "z", "w"}, lines: 1},
		}},
		{"rotation that kept the checkpointed lines loses nothing", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "x1"); k.add(1, 0, "x2") }, want: []string{"x1", "x2"}, lines: 2},
			{do: func(k *kubelet, p *pod) {
				k.mu.Lock()
				k.current = []entry{{ts: ts(1, 0), text: "x2"}, {ts: ts(1, 1), text: "x3"}}
				k.mu.Unlock()
			}, want: []string{"x1", "x2", "x3"}, lines: 1},
		}},
		{"a line still being written waits for its newline", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a"); k.unterminated = &entry{ts: ts(0, 5), text: "half"} }, want: []string{"a"}, lines: 1},
			{do: func(k *kubelet, p *pod) { k.unterminated = nil; k.add(0, 5, "half done") }, want: []string{"a", "half done"}, lines: 1},
		}},
		{"lines longer than the read buffer", []step{
			{do: func(k *kubelet, p *pod) { k.add(0, 0, strings.Repeat("l", 1000), "s") }, want: []string{strings.Repeat("l", 1000), "s"}, lines: 2},
			{do: func(k *kubelet, p *pod) { k.add(0, 0, strings.Repeat("m", 300)) }, want: []string{strings.Repeat("l", 1000), "s", strings.Repeat("m", 300)}, lines: 1},
		}},
		{"a container ID that shows up late is the same instance", []step{
			{do: func(k *kubelet, p *pod) { p.status.ContainerID = "" }, want: []string{}, lines: 0},
			{do: func(k *kubelet, p *pod) { k.add(0, 0, "a") }, want: []string{"a"}, lines: 1},
			{do: func(k *kubelet, p *pod) { p.status.ContainerID = "containerd://late"; k.add(0, 0, "b") }, want: []string{"a", "b"}, lines: 1},
		}},
		{"since bounds the first export only", []step{
			{since: ts(10, 0), do: func(k *kubelet, p *pod) { k.add(0, 0, "old"); k.add(10, 0, "new") }, want: []string{"new"}, lines: 1},
			{since: ts(20, 0), do: func(k *kubelet, p *pod) { k.add(11, 0, "newer") }, want: []string{"new", "newer"}, lines: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, p, run := newFixture(t)
			for i, s := range tt.steps {
				if s.listedBefore {
					listed := p.status
					p.listed = &listed
				}
				s.do(k, p)
				res := run(Options{Since: s.since, BufferSize: 64})
				if res.Err != nil {
					t.Fatalf("step %d: %v", i, res.Err)
				}
				if res.Lines != s.lines || len(res.Gaps) != s.gaps {
					t.Fatalf("step %d: added %d lines with gaps %v, want %d lines and %d gaps", i, res.Lines, res.Gaps, s.lines, s.gaps)
				}
				b, err := os.ReadFile(p.file)
				if err != nil {
					t.Fatal(err)
				}
				if want := lines(s.want); string(b) != want {
					t.Fatalf("step %d: file %q, want %q", i, b, want)
				}
			}
		})
	}
}

func TestInstances(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(ts(10, 0))}}
	last := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: "c://1", StartedAt: metav1.NewTime(ts(1, 0))}}
	tests := []struct {
		name          string
		st            *corev1.ContainerStatus
		older, newest string
	}{
		{"not reported", nil, "", ""},
		{"waiting first time", &corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}, "", ""},
		{"running", &corev1.ContainerStatus{ContainerID: "c://2", State: running}, "", "c://2"},
		{"restarted", &corev1.ContainerStatus{ContainerID: "c://2", State: running, LastTerminationState: last}, "c://1", "c://2"},
		{"crash loop waiting serves the last instance", &corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}, LastTerminationState: last}, "", "c://1"},
		{"no container IDs: start times tell instances apart", &corev1.ContainerStatus{State: running, LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{StartedAt: metav1.NewTime(ts(1, 0))}}},
			"pod://uid/started/2024-01-01T10:00:01Z", "pod://uid/started/2024-01-01T10:00:10Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, c := instances("uid", tt.st)
			id := func(in *instance) string {
				if in == nil {
					return ""
				}
				return in.id
			}
			if id(o) != tt.older || id(c) != tt.newest {
				t.Fatalf("got %q, %q; want %q, %q", id(o), id(c), tt.older, tt.newest)
			}
		})
	}
}

func lines(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return strings.Join(s, "\n") + "\n"
}

// A --timestamps file whose checkpoint is lost continues once its last lines prove which instance
// they came from; a file whose last lines the API does not serve is refused.
func TestRecoverLostCheckpoint(t *testing.T) {
	tests := []struct {
		name    string
		between func(k *kubelet, p *pod, file string)
		want    string // appended by the run after the loss
		wantErr string
	}{
		{name: "same instance", between: func(k *kubelet, p *pod, _ string) { k.add(1, 0, "b"); k.add(2, 0, "c") }, want: "b c"},
		{name: "after a restart", between: func(k *kubelet, p *pod, _ string) { k.add(1, 0, "b"); p.restart(k); k.add(50, 0, "n") }, want: "b n"},
		{name: "tampered file", between: func(k *kubelet, p *pod, file string) {
			b, _ := os.ReadFile(file)
			_ = os.WriteFile(file, []byte(strings.Replace(string(b), " a2\n", " A2\n", 1)), 0o644)
		}, wantErr: "last lines are not what the API serves"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, p, export := newFixture(t)
			run := func() Result { return export(Options{Timestamps: true}) }
			dir, file := p.dir, p.file
			k.add(0, 0, "a1", "a2", "a2")
			if r := run(); r.Err != nil || r.Lines != 3 {
				t.Fatalf("first run: %+v", r)
			}
			before, _ := os.ReadFile(file)
			if err := os.RemoveAll(filepath.Join(dir, ".logexport", "checkpoints")); err != nil {
				t.Fatal(err)
			}
			tt.between(k, p, file)
			stored, _ := os.ReadFile(file)
			r := run()
			if tt.wantErr != "" {
				if r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", r.Err, tt.wantErr)
				}
				if after, _ := os.ReadFile(file); string(after) != string(stored) {
					t.Fatalf("a refused file changed")
				}
				return
			}
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			after, _ := os.ReadFile(file)
			var added []string
			for _, l := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(string(after), string(before)), "\n"), "\n") {
				added = append(added, l[strings.IndexByte(l, ' ')+1:])
			}
			if !strings.HasPrefix(string(after), string(before)) || strings.Join(added, " ") != tt.want {
				t.Fatalf("file %q: added %q, want %q", after, added, tt.want)
			}
		})
	}
}
