package logserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func fixed(ms int) string { return at(ms).Format("2006-01-02T15:04:05.000000000Z07:00") }

func readLog(t *testing.T, c kubernetes.Interface, pod string, opts *corev1.PodLogOptions) (string, error) {
	t.Helper()
	rc, err := c.CoreV1().Pods("default").GetLogs(pod, opts).Stream(context.Background())
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading log: %v", err)
	}
	return string(b), nil
}

// TestLogs checks that each rule of the log API comes out as a cluster serves it.
func TestLogs(t *testing.T) {
	sinceSecond := metav1.NewTime(at(1000))
	two := int64(2)
	tests := []struct {
		name    string
		setup   func(s *Server)
		opts    corev1.PodLogOptions
		want    string
		wantErr func(error) bool
		errText string
	}{
		{
			name: "lines with timestamps",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Text: "a"}, Entry{Time: at(0), Stream: "stderr", Text: "a"})
			},
			opts: corev1.PodLogOptions{Container: "c", Timestamps: true},
			want: fixed(0) + " a\n" + fixed(0) + " a\n",
		},
		{
			name: "partial entries are one line",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Partial: true, Text: "lo"}, Entry{Time: at(1), Text: "ng"})
			},
			opts: corev1.PodLogOptions{Container: "c", Timestamps: true},
			want: fixed(0) + " long\n",
		},
		{
			// The reader skips entries before since but still learns from them that a line goes
			// on: the served stream begins with a fragment without a timestamp.
			name: "partial entries straddling sinceTime give an untimestamped fragment",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(900), Partial: true, Text: "aa"},
					Entry{Time: at(1100), Partial: true, Text: "bb"}, Entry{Time: at(1200), Text: "cc"},
					Entry{Time: at(1500), Text: "next"})
			},
			opts: corev1.PodLogOptions{Container: "c", Timestamps: true, SinceTime: &sinceSecond},
			want: "bbcc\n" + fixed(1500) + " next\n",
		},
		{
			name:    "no previous instance",
			opts:    corev1.PodLogOptions{Container: "c", Previous: true},
			wantErr: apierrors.IsBadRequest,
			errText: `previous terminated container "c" in pod "p" not found`,
		},
		{
			name: "previous instance after a restart",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Text: "old"})
				s.Restart("default", "p", "c")
				s.Append("default", "p", "c", Entry{Time: at(10), Text: "new"})
			},
			opts: corev1.PodLogOptions{Container: "c", Previous: true},
			want: "old\n",
		},
		{
			name: "current instance after a restart",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Text: "old"})
				s.Restart("default", "p", "c")
				s.Append("default", "p", "c", Entry{Time: at(10), Text: "new"})
			},
			opts: corev1.PodLogOptions{Container: "c"},
			want: "new\n",
		},
		{
			name: "only one previous instance is kept",
			setup: func(s *Server) {
				for i, text := range []string{"first", "second", "third"} {
					if i > 0 {
						s.Restart("default", "p", "c")
					}
					s.Append("default", "p", "c", Entry{Time: at(i), Text: text})
				}
			},
			opts: corev1.PodLogOptions{Container: "c", Previous: true},
			want: "second\n",
		},
		{
			name: "a terminated container's log is still the current one",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Text: "done"})
				s.Terminate("default", "p", "c", 0)
			},
			opts: corev1.PodLogOptions{Container: "c"},
			want: "done\n",
		},
		{
			name: "rotation serves only the new file",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Text: "rotated away"})
				s.Rotate("default", "p", "c")
				s.Append("default", "p", "c", Entry{Time: at(10), Text: "kept"})
			},
			opts: corev1.PodLogOptions{Container: "c"},
			want: "kept\n",
		},
		{
			name: "tailLines counts entries from the end",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Text: "1"}, Entry{Time: at(1), Text: "2"}, Entry{Time: at(2), Text: "3"})
			},
			opts: corev1.PodLogOptions{Container: "c", TailLines: &two},
			want: "2\n3\n",
		},
		{
			name: "limitBytes cuts mid-line",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Text: "abcdef"})
			},
			opts: corev1.PodLogOptions{Container: "c", LimitBytes: &two},
			want: "ab",
		},
		{
			name:    "unknown container",
			opts:    corev1.PodLogOptions{Container: "nope"},
			wantErr: apierrors.IsBadRequest,
			errText: "container nope is not valid for pod p",
		},
		{
			name:    "deleted pod",
			setup:   func(s *Server) { s.Delete("default", "p") },
			opts:    corev1.PodLogOptions{Container: "c"},
			wantErr: apierrors.IsNotFound,
			errText: `pods "p" not found`,
		},
		{
			name: "a replaced pod starts with empty logs",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Text: "old pod"})
				s.Replace("default", "p")
			},
			opts: corev1.PodLogOptions{Container: "c"},
			want: "",
		},
		{
			// The hook lands a restart between the list and the fetch: previous=false serves
			// the new instance.
			name: "a restart in the log request hook",
			setup: func(s *Server) {
				s.Append("default", "p", "c", Entry{Time: at(0), Text: "listed"})
				s.OnLogRequest(func(ns, pod string, _ *corev1.PodLogOptions) {
					s.OnLogRequest(nil)
					s.Restart(ns, pod, "c")
				})
			},
			opts: corev1.PodLogOptions{Container: "c"},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			s.AddPod("default", "p", "c")
			if tt.setup != nil {
				tt.setup(s)
			}
			got, err := readLog(t, s.Client(), "p", &tt.opts)
			if tt.wantErr != nil {
				if err == nil || !tt.wantErr(err) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error = %v, want one containing %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("reading log: %v", err)
			}
			if got != tt.want {
				t.Errorf("log = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStatus checks the container IDs and restart bookkeeping a kubelet reports.
func TestStatus(t *testing.T) {
	s := New(t)
	uid := s.AddPod("default", "p", "c")
	st := s.Pod("default", "p").Status.ContainerStatuses[0]
	if !strings.HasPrefix(st.ContainerID, "containerd://") || st.State.Running == nil || st.RestartCount != 0 ||
		st.LastTerminationState.Terminated != nil {
		t.Fatalf("new container status = %+v", st)
	}
	s.Restart("default", "p", "c")
	st2 := s.Pod("default", "p").Status.ContainerStatuses[0]
	switch {
	case st2.ContainerID == st.ContainerID:
		t.Errorf("restart kept the container ID %s", st.ContainerID)
	case st2.RestartCount != 1:
		t.Errorf("restartCount = %d, want 1", st2.RestartCount)
	case st2.LastTerminationState.Terminated == nil || st2.LastTerminationState.Terminated.ContainerID != st.ContainerID:
		t.Errorf("lastState = %+v, want the old instance %s", st2.LastTerminationState, st.ContainerID)
	}
	if s.Replace("default", "p") == uid {
		t.Errorf("the replaced pod kept the UID %s", uid)
	}
	if got := s.Pod("default", "p").Status.ContainerStatuses[0].RestartCount; got != 0 {
		t.Errorf("restartCount of the new pod = %d, want 0", got)
	}
}

// TestFollowEnds checks that a follow stream delivers lines as they come and ends by itself, as
// a kubelet's does, when the container stops or the pod is deleted.
func TestFollowEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(s *Server)
	}{
		{"terminate", func(s *Server) { s.Terminate("default", "p", "c", 0) }},
		{"restart", func(s *Server) { s.Restart("default", "p", "c") }},
		{"delete", func(s *Server) { s.Delete("default", "p") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			s.AddPod("default", "p", "c")
			s.Append("default", "p", "c", Entry{Time: at(0), Text: "one"})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			rc, err := s.Client().CoreV1().Pods("default").GetLogs("p", &corev1.PodLogOptions{Container: "c", Follow: true}).Stream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			r := bufio.NewReader(rc)
			if line, err := r.ReadString('\n'); err != nil || line != "one\n" {
				t.Fatalf("first line = %q, %v", line, err)
			}
			s.Append("default", "p", "c", Entry{Time: at(1), Partial: true, Text: "tw"}, Entry{Time: at(2), Text: "o"})
			if line, err := r.ReadString('\n'); err != nil || line != "two\n" {
				t.Fatalf("followed line = %q, %v", line, err)
			}
			tt.end(s)
			rest, err := io.ReadAll(r)
			if err != nil || ctx.Err() != nil {
				t.Fatalf("stream did not end cleanly: %v (context: %v)", err, ctx.Err())
			}
			if len(rest) != 0 {
				t.Errorf("after the end: %q", rest)
			}
		})
	}
}

// TestInformer checks that a client-go informer, as follow mode uses one, sees pods come, change
// and go.
func TestInformer(t *testing.T) {
	s := New(t)
	s.AddPod("default", "before", "c")
	s.AddPod("other", "elsewhere", "c")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory := informers.NewSharedInformerFactoryWithOptions(s.Client(), 0, informers.WithNamespace("default"))
	inf := factory.Core().V1().Pods().Informer()
	events := make(chan string, 100)
	name := func(obj any) string {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		p := obj.(*corev1.Pod)
		return p.Namespace + "/" + p.Name
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { events <- "add " + name(obj) },
		UpdateFunc: func(_, obj any) {
			events <- "update " + name(obj) + " restarts " + string(rune('0'+obj.(*corev1.Pod).Status.ContainerStatuses[0].RestartCount))
		},
		DeleteFunc: func(obj any) { events <- "delete " + name(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	s.AddPod("default", "after", "c")
	s.Restart("default", "after", "c")
	s.Delete("default", "before")
	want := []string{"add default/before", "add default/after", "update default/after restarts 1", "delete default/before"}
	for i, w := range want {
		select {
		case got := <-events:
			if got != w {
				t.Fatalf("event %d = %q, want %q", i, got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d: none after 10s, want %q", i, w)
		}
	}
}

// TestContentTypes checks lists and gets in both encodings a clientset may ask for; the command
// asks for protobuf.
func TestContentTypes(t *testing.T) {
	s := New(t)
	uid := s.AddPod("default", "p", "c")
	tests := []struct {
		name        string
		contentType string
	}{
		{"json", ""},
		{"protobuf", "application/vnd.kubernetes.protobuf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.RESTConfig()
			if tt.contentType != "" {
				cfg.ContentType = tt.contentType
				cfg.AcceptContentTypes = tt.contentType
			}
			c, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			list, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
			if err != nil || len(list.Items) != 1 || list.Items[0].UID != uid {
				t.Fatalf("list = %+v, %v", list, err)
			}
			p, err := c.CoreV1().Pods("default").Get(context.Background(), "p", metav1.GetOptions{})
			if err != nil || p.Status.ContainerStatuses[0].ContainerID == "" {
				t.Fatalf("get = %+v, %v", p, err)
			}
		})
	}
}

// TestRequestsByUser checks that a client is told apart by the user it impersonates, as the
// model test tells its runs apart: hooks and counts see only that client's requests.
func TestRequestsByUser(t *testing.T) {
	s := New(t)
	s.AddPod("default", "p", "c")
	client := func(user string) kubernetes.Interface {
		cfg := s.RESTConfig()
		cfg.Impersonate.UserName = user
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var hooked []string
	s.OnLogRequestFrom("run-2", func(_, pod string, _ *corev1.PodLogOptions) { hooked = append(hooked, pod) })
	// A terminated container's followed stream ends with its log, as a plain one does.
	s.Terminate("default", "p", "c", 0)
	for i, user := range []string{"", "run-1", "run-2", "run-2"} {
		if _, err := readLog(t, client(user), "p", &corev1.PodLogOptions{Container: "c", Follow: i == 3}); err != nil {
			t.Fatalf("reading log as %q: %v", user, err)
		}
	}
	if len(hooked) != 2 {
		t.Errorf("hook called %d times, want 2 (the requests of run-2 only)", len(hooked))
	}
	for user, want := range map[string][2]int{"": {1, 0}, "run-1": {1, 0}, "run-2": {2, 1}, "run-3": {0, 0}} {
		if got := s.LogRequests("default", "p", "c", user); got != want[0] {
			t.Errorf("LogRequests(%q) = %d, want %d", user, got, want[0])
		}
		if got := s.FollowRequests("default", "p", "c", user); got != want[1] {
			t.Errorf("FollowRequests(%q) = %d, want %d", user, got, want[1])
		}
	}
	if got := s.LogRequests("default", "p", "other", ""); got != 0 {
		t.Errorf("LogRequests of a container the pod does not have = %d, want 0", got)
	}
	s.Replace("default", "p")
	if got := s.LogRequests("default", "p", "c", "run-2"); got != 0 {
		t.Errorf("LogRequests of a replaced pod = %d, want 0 (a new pod)", got)
	}
	if got := s.FollowRequests("default", "p", "c", "run-2"); got != 0 {
		t.Errorf("FollowRequests of a replaced pod = %d, want 0 (a new pod)", got)
	}
}

// A list asked for in pages returns every matching pod once, in order, whatever the page size.
func TestListPages(t *testing.T) {
	s := New(t)
	var want []string
	for i := range 7 {
		s.AddPod("a", fmt.Sprintf("p%d", i), "c")
		want = append(want, fmt.Sprintf("p%d", i))
	}
	s.AddPod("b", "other", "c")
	for _, limit := range []int64{0, 1, 2, 3, 6, 7, 8} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var got []string
			pages := 0
			opts := metav1.ListOptions{Limit: limit}
			for {
				list, err := s.Client().CoreV1().Pods("a").List(context.Background(), opts)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if limit > 0 && int64(len(list.Items)) > limit {
					t.Fatalf("a page of %d pods, limit %d", len(list.Items), limit)
				}
				for _, p := range list.Items {
					got = append(got, p.Name)
				}
				if list.Continue == "" {
					break
				}
				opts.Continue = list.Continue
			}
			wantPages := 1
			if limit > 0 {
				wantPages = (len(want) + int(limit) - 1) / int(limit)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || pages != wantPages {
				t.Errorf("%d pages of %v, want %d of %v", pages, got, wantPages, want)
			}
		})
	}
}
