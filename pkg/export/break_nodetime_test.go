package export

// Adversarial tests from the review of ce84350 (a first export proven by the node's clock),
// e9b4d3d (the probe of the other instance is not followed) and 60a547a (follow: export.Gone).

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
)

// settableClock is a node clock a test moves by hand.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// perNamespaceClient is a client of srv that may not list pods in all namespaces (403), sees
// the namespaces given, and calls beforeList(ns) before each namespace's pod list reaches srv:
// podselect.List then lists namespace by namespace, as it does for a user with namespaced
// rights only.
func perNamespaceClient(t *testing.T, srv *logserver.Server, namespaces []string, beforeList func(ns string)) kubernetes.Interface {
	t.Helper()
	cfg := srv.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			respond := func(code int, body string) (*http.Response, error) {
				return &http.Response{StatusCode: code, Status: fmt.Sprintf("%d", code), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
					Header: http.Header{"Content-Type": []string{"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
					ContentLength: int64(len(body)), Request: r}, nil
			}
			switch p := strings.TrimSuffix(r.URL.Path, "/"); {
			case p == "/api/v1/pods":
				return respond(http.StatusForbidden, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"pods is forbidden: cannot list resource \"pods\" at the cluster scope"}`)
			case p == "/api/v1/namespaces":
				var items []string
				for _, n := range namespaces {
					items = append(items, fmt.Sprintf(`{"metadata":{"name":%q}}`, n))
				}
				return respond(http.StatusOK, `{"kind":"NamespaceList","apiVersion":"v1","metadata":{},"items":[`+strings.Join(items, ",")+`]}`)
			case strings.HasPrefix(p, "/api/v1/namespaces/") && strings.HasSuffix(p, "/pods") && r.URL.Query().Get("watch") == "":
				beforeList(strings.Split(p, "/")[4])
			}
			return rt.RoundTrip(r)
		})
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// runTargets is what cmd.Run does with a list.
func runTargets(pods []target.Packed) []target.Target {
	return podselect.Selector{}.ListedTargets(pods)
}

// listed is what a list keeps of pods listed together.
func listed(pods ...*corev1.Pod) []target.Packed {
	out := make([]target.Packed, 0, len(pods))
	for _, p := range pods {
		tp := target.PodOf(p)
		out = append(out, tp.Pack())
	}
	return out
}

// With --all-namespaces and no right to list pods cluster-wide, podselect.List lists namespace
// by namespace, each list at its own moment, and cmd.Run takes NodeTimes over all of them: the
// node's time can come from a pod listed after the target's pod was, so it is not a time the
// node's clock had passed when the target's status was read. A container of a pod in namespace
// "a" restarts (A -> B) after "a" was listed, B logs b-1, and minutes later (a big cluster's list,
// namespace by namespace) a pod on the same node starts and is listed in namespace "z". b-1 is
// older than that node time less the skew, so the stream (B's, served by previous=false) is
// "proven" to be A's without asking for the pod: b-1 is stored under instance A and A's line a-1,
// which previous=true serves, is never read. After one more restart (B -> C) before the next run,
// the checkpoint's instance A is gone, a gap is reported after b-1, and B's log is exported again
// from its start: b-1 is stored twice, and a-1 is lost outside any gap.
//
// Without the node time (the status request after the stream), the same events store a-1, b-1
// and c-1 once each.
func TestBreakNodeTimeFromALaterNamespaceList(t *testing.T) {
	for _, withNodeTime := range []bool{false, true} {
		t.Run(fmt.Sprintf("nodeTime=%v", withNodeTime), func(t *testing.T) {
			srv := logserver.New(t)
			defer srv.Close()
			base := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
			clk := &settableClock{now: base}
			srv.NodeClock = clk.Now
			srv.AddPod("a", "x", "c")
			aAt := base.Add(time.Second)
			srv.Append("a", "x", "c", logserver.Entry{Time: aAt, Text: "a-1"})

			var once sync.Once
			var bAt time.Time
			client := perNamespaceClient(t, srv, []string{"a", "z"}, func(ns string) {
				if ns != "z" {
					return
				}
				once.Do(func() {
					// Namespace "a" is listed: x/c is A, running. x/c restarts, B logs b-1.
					clk.Set(base.Add(10 * time.Second))
					srv.Restart("a", "x", "c")
					bAt = base.Add(11 * time.Second)
					srv.Append("a", "x", "c", logserver.Entry{Time: bAt, Text: "b-1"})
					// Minutes later the list reaches namespace "z", where a pod on the same node
					// has just started.
					clk.Set(base.Add(3 * time.Minute))
					srv.AddPod("z", "y", "c")
				})
			})
			pods, nsErrs, err := podselect.List(context.Background(), client, podselect.Scope{AllNamespaces: true}, podselect.Selector{})
			if err != nil || len(nsErrs) != 0 || len(pods) != 2 {
				t.Fatalf("list: %d pods, %v, %v", len(pods), nsErrs, err)
			}
			targets := runTargets(pods)
			x := targets[0]
			if x.Key() != "a/x/c" {
				t.Fatalf("first target %s", x.Key())
			}
			if !withNodeTime {
				x.NodeTime = time.Time{}
			} else if !x.NodeTime.Before(base.Add(3 * time.Minute)) {
				t.Fatalf("node time %v taken from the later namespace's list", x.NodeTime)
			}
			if st := x.Status; st == nil || st.State.Running == nil || st.LastTerminationState.Terminated != nil {
				t.Fatalf("listed status of x/c is not A running alone: %+v", st)
			}

			dir := t.TempDir()
			export := func(tgt target.Target) Result {
				e, d := breakExporter(t, srv, dir, Options{}, nil)
				res := e.Export(context.Background(), tgt)
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				return res
			}
			var gaps []Gap
			res := export(x)
			gaps = append(gaps, res.Gaps...)
			t.Logf("run 1: err=%v gaps=%v file %q", res.Err, res.Gaps, readNSLog(t, dir, "a", "x", "c"))

			// Before the next run, x/c restarts once more (B -> C); the API now serves B as the
			// previous instance and C as the current one.
			clk.Set(base.Add(4 * time.Minute))
			srv.Restart("a", "x", "c")
			srv.Append("a", "x", "c", logserver.Entry{Time: base.Add(4*time.Minute + time.Second), Text: "c-1"})
			fresh := runTargets(listed(srv.Pod("a", "x")))[0]
			res = export(fresh)
			gaps = append(gaps, res.Gaps...)
			got := readNSLog(t, dir, "a", "x", "c")
			t.Logf("run 2: err=%v gaps=%v file %q", res.Err, res.Gaps, got)

			for _, l := range []string{"b-1", "c-1"} {
				if n := strings.Count(got, l+"\n"); n != 1 {
					t.Errorf("%s (served by the API) is stored %d times; file %q", l, n, got)
				}
			}
			if !strings.Contains(got, "a-1\n") && !inGap(aAt, gaps) {
				t.Errorf("a-1 (served by previous=true through run 1) is neither stored nor inside a reported gap (gaps %v); file %q", gaps, got)
			}
			if strings.Contains(got, "a-1\n") && strings.Index(got, "a-1\n") > strings.Index(got, "b-1\n") {
				t.Errorf("a-1 stored after b-1; file %q", got)
			}
		})
	}
}

func inGap(at time.Time, gaps []Gap) bool {
	for _, g := range gaps {
		if !at.Before(g.From) && (g.To == nil || !at.After(*g.To)) {
			return true
		}
	}
	return false
}

func readNSLog(t *testing.T, dir, ns, pod, container string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ns, pod, container+".log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// One list, one node, but the node's clock steps back (NTP correcting a clock that ran minutes
// ahead, a VM resumed from a snapshot) after the pods were listed: nodeClockSkew bounds how far
// two nodes' clocks may be apart, not how far one node's clock may step back, and the node time
// taken from the fast clock is then minutes ahead of the lines the next instance logs. The
// container restarts between the list and the log request (A -> B): B's line is "proven" A's by
// the node time, A's line is never read, and after one more restart before the next run B's line
// is stored twice. Without the node time the status request after the stream sees B and the
// export starts again: every line once.
func TestBreakNodeTimeClockSteppedBack(t *testing.T) {
	for _, withNodeTime := range []bool{false, true} {
		t.Run(fmt.Sprintf("nodeTime=%v", withNodeTime), func(t *testing.T) {
			srv := logserver.New(t)
			defer srv.Close()
			// The node's clock runs 3 minutes ahead when the pod starts and logs a-1.
			fast := time.Now().Add(3 * time.Minute).Truncate(time.Second)
			clk := &settableClock{now: fast}
			srv.NodeClock = clk.Now
			srv.AddPod("default", "p0", "c")
			aAt := fast.Add(time.Second)
			clk.Set(aAt)
			srv.Append("default", "p0", "c", logserver.Entry{Time: aAt, Text: "a-1"})
			pods := listed(srv.Pod("default", "p0"))
			tgt := runTargets(pods)[0]
			if !withNodeTime {
				tgt.NodeTime = time.Time{}
			}
			var once sync.Once
			srv.OnLogRequest(func(ns, pod string, opts *corev1.PodLogOptions) {
				once.Do(func() {
					// NTP steps the clock back to the true time; the container restarts.
					clk.Set(time.Now().Truncate(time.Second))
					srv.Restart("default", "p0", "c")
					srv.Append("default", "p0", "c", logserver.Entry{Time: clk.Now().Add(time.Second), Text: "b-1"})
				})
			})
			dir := t.TempDir()
			export := func(tgt target.Target) Result {
				e, d := breakExporter(t, srv, dir, Options{}, nil)
				res := e.Export(context.Background(), tgt)
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				return res
			}
			var gaps []Gap
			res := export(tgt)
			gaps = append(gaps, res.Gaps...)
			t.Logf("run 1: err=%v gaps=%v file %q", res.Err, res.Gaps, readLog(t, dir, "p0", "c"))
			clk.Set(clk.Now().Add(10 * time.Second))
			srv.Restart("default", "p0", "c")
			srv.Append("default", "p0", "c", logserver.Entry{Time: clk.Now().Add(time.Second), Text: "c-1"})
			res = export(runTargets(listed(srv.Pod("default", "p0")))[0])
			gaps = append(gaps, res.Gaps...)
			got := readLog(t, dir, "p0", "c")
			t.Logf("run 2: err=%v gaps=%v file %q", res.Err, res.Gaps, got)
			for _, l := range []string{"b-1", "c-1"} {
				if n := strings.Count(got, l+"\n"); n != 1 {
					t.Errorf("%s (served by the API) is stored %d times; file %q", l, n, got)
				}
			}
			if !strings.Contains(got, "a-1\n") && !inGap(aAt, gaps) {
				t.Errorf("a-1 (served by previous=true through run 1) is neither stored nor inside a reported gap (gaps %v); file %q", gaps, got)
			}
		})
	}
}
