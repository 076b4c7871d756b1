// Package logserver is an in-process stand-in for the parts of a cluster that a log export talks
// to: the pod list, get and watch endpoints of an API server and the log endpoint of a kubelet,
// served over HTTP to a real client-go clientset, and the Leases a run into a bucket holds.
//
// Logs are CRI files that the test writes through Append, and they are served by
// k8s.io/cri-client/pkg/logs.ReadLogs, the reader the kubelet and kwok use, so that partial
// entries, sinceTime compared per entry, follow streams that end when the container stops and
// the other rules in ../../../shared/notes/log-api-facts.md come from the real code, not from a
// copy of it. What the kubelet adds around the reader (which instance previous=true serves, one
// previous instance kept, rotation, 404 after deletion) is modelled here, each the way a kubelet
// does it.
package logserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/logs"
	"k8s.io/klog/v2"
)

// Entry is one CRI log entry: a line, or with Partial a piece of one that the runtime split.
type Entry struct {
	Time   time.Time
	Stream string // "stdout" or "stderr"; empty means stdout
	// Partial marks a piece that does not end the line (the CRI "P" tag); the line goes on in
	// the next entry of the same stream.
	Partial bool
	Text    string
}

// Server is the fake cluster. Its methods are safe for concurrent use; they report misuse (an
// unknown pod) with t.Errorf, so they may also be called from OnLogRequest hooks.
type Server struct {
	// NodeClock is the clock of the node's kubelet and runtime: container start and finish
	// times and the pod's startTime come from it, as log timestamps do; the API server's own
	// (creationTimestamp) is time.Now. It may be set before pods are added.
	NodeClock func() time.Time
	t         testing.TB
	dir       string
	http      *httptest.Server

	mu   sync.Mutex
	rv   uint64
	pods map[string]*pod // by namespace/name
	// namespaces exist once a pod was added to them (and default always), as a cluster's do
	// beside their pods: they are never deleted.
	namespaces map[string]bool
	events     []event       // every change, for watches from any resourceVersion
	changed    chan struct{} // closed and replaced on every change
	closed     chan struct{}
	onLog      func(ns, pod string, opts *corev1.PodLogOptions)
	// tails counts the log requests that asked for a tail, followedTails those of them with
	// follow=true, tailsRetried the requests without one that followed one from the same user
	// for the same container.
	tails, followedTails, tailsRetried int
	// onLogUser, if set, limits onLog to requests that impersonate this user.
	onLogUser string
	// shorten and shortenUser: see ShortenLogsFrom.
	shorten     func(ns, pod string, opts *corev1.PodLogOptions) (int64, bool)
	shortenUser string
	byID        map[string]*instance // by container ID without the runtime prefix
	// leases by namespace/name (see lease.go), with their own resourceVersions.
	leases  map[string]*coordinationv1.Lease
	leaseRV uint64

	// files keeps a one-shot log read from seeing half of an Append: a follow read seeks back
	// over an incomplete entry by itself, a one-shot read would serve it.
	files sync.RWMutex

	closeOnce sync.Once
}

type event struct {
	rv  uint64
	typ watch.EventType
	pod *corev1.Pod
}

type pod struct {
	obj        *corev1.Pod
	containers map[string]*container
	// gone is closed when the pod is deleted: open log streams end.
	gone chan struct{}
	// started is when the kubelet took the pod, by the node's clock.
	started time.Time
}

type container struct {
	dir      string
	restarts int32
	// requests counts the log requests for it, by impersonated user ("" for none); follows
	// those with follow=true.
	requests, follows map[string]int
	// tailed: the user's last request asked for a tail (tailLines).
	tailed map[string]bool
	// cur is the newest instance; prev the one before it, the only older one a kubelet keeps.
	cur, prev *instance
}

type instance struct {
	id                string // hex, without "containerd://"
	path              string
	started, finished time.Time
	exitCode          int32
	running           bool
}

// New starts a server; it stops when the test ends. Set NodeClock before adding pods to give
// the node a clock of its own.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:          t,
		dir:        t.TempDir(),
		pods:       map[string]*pod{},
		namespaces: map[string]bool{"default": true},
		changed:    make(chan struct{}),
		closed:     make(chan struct{}),
		byID:       map[string]*instance{},
		leases:     map[string]*coordinationv1.Lease{},
		NodeClock:  time.Now,
	}
	s.http = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Close ends every watch and stream and stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.http.CloseClientConnections()
		s.http.Close()
	})
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.http.URL }

// RESTConfig is a client configuration for the server, without client-side throttling.
func (s *Server) RESTConfig() *rest.Config {
	return &rest.Config{Host: s.http.URL, QPS: -1}
}

// Client is a real clientset talking to the server.
func (s *Server) Client() kubernetes.Interface {
	c, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		s.t.Fatalf("creating client: %v", err)
	}
	return c
}

// Kubeconfig writes a kubeconfig for the server, whose current context has the namespace
// "default", and returns its path, for running the command with --kubeconfig.
func (s *Server) Kubeconfig() string {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["logserver"] = &clientcmdapi.Cluster{Server: s.http.URL}
	cfg.AuthInfos["logserver"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["logserver"] = &clientcmdapi.Context{Cluster: "logserver", AuthInfo: "logserver", Namespace: "default"}
	cfg.CurrentContext = "logserver"
	path := filepath.Join(s.dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		s.t.Fatalf("writing kubeconfig: %v", err)
	}
	return path
}

// OnLogRequest sets a hook called when a log request arrives, before the server looks at the
// pod: a test can change a container there (restart it) to land "between list and fetch".
func (s *Server) OnLogRequest(hook func(ns, pod string, opts *corev1.PodLogOptions)) {
	s.OnLogRequestFrom("", hook)
}

// OnLogRequestFrom is OnLogRequest for one client's requests only, those that impersonate user
// (the command's --as, which the server otherwise ignores), or every request if user is "". A
// run that was cancelled or killed can leave requests on their way to the server, which must not
// count as the next run's.
func (s *Server) OnLogRequestFrom(user string, hook func(ns, pod string, opts *corev1.PodLogOptions)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onLog, s.onLogUser = hook, user
}

// ShortenLogsFrom ends log responses to user's requests early, as the API server does when its
// copy from the kubelet breaks off: it drops the copy's error and ends the response normally, so
// the client reads a clean end of the body. keep says, for each request, how many bytes of the
// body are sent (negative: all), and whether on to the end of the line they end inside. nil keep
// stops it.
func (s *Server) ShortenLogsFrom(user string, keep func(ns, pod string, opts *corev1.PodLogOptions) (n int64, toLineEnd bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shorten, s.shortenUser = keep, user
}

// errShortened stops the log reader at the length ShortenLogsFrom kept.
var errShortened = errors.New("response shortened by the test")

// shortWriter passes the first left bytes on (and on to the end of their line if toLineEnd),
// then fails.
type shortWriter struct {
	w         io.Writer
	left      int64
	toLineEnd bool
}

func (w *shortWriter) Write(b []byte) (int, error) {
	if int64(len(b)) <= w.left {
		w.left -= int64(len(b))
		return w.w.Write(b)
	}
	if w.toLineEnd {
		if i := bytes.IndexByte(b[w.left:], '\n'); i >= 0 {
			w.left += int64(i) + 1
			w.toLineEnd = false
		} else {
			// The line goes on in the next write.
			w.left = int64(len(b))
		}
		return w.Write(b)
	}
	n, err := w.w.Write(b[:w.left])
	w.left -= int64(n)
	if err == nil {
		err = errShortened
	}
	return n, err
}

// LogRequests counts the log requests that reached a container of the pod that has the name now,
// from clients that impersonate user (the command's --as; "" for none): 0 for a pod that does not
// exist.
func (s *Server) LogRequests(ns, podName, name, user string) int {
	return s.countRequests(ns, podName, name, func(c *container) int { return c.requests[user] })
}

// TailRequests counts the log requests that asked for a tail (tailLines), those of them that
// followed the log, and those without one that came next from the same user for the same
// container: a client asking again for what the tail did not hold.
func (s *Server) TailRequests() (tails, followed, retried int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tails, s.followedTails, s.tailsRetried
}

// FollowRequests is LogRequests counting only those with follow=true. A client opens a followed
// stream once it has read what the log served before (kubectl logexport's follower does): one
// opened after a change shows that the client has looked at the log since.
func (s *Server) FollowRequests(ns, podName, name, user string) int {
	return s.countRequests(ns, podName, name, func(c *container) int { return c.follows[user] })
}

// countRequests is what count says of a container of the pod that has the name now, and 0 if
// there is no such container (a pod deleted or replaced has its requests counted no longer).
func (s *Server) countRequests(ns, podName, name string, count func(c *container) int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pods[ns+"/"+podName]
	if p == nil || p.containers[name] == nil {
		return 0
	}
	return count(p.containers[name])
}

// AddPod creates a running pod whose containers have each started one instance with an empty log.
func (s *Server) AddPod(ns, name string, containers ...string) types.UID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pods[ns+"/"+name]; ok {
		s.t.Errorf("logserver: pod %s/%s exists", ns, name)
		return ""
	}
	p := s.newPod(ns, name, containers)
	s.record(watch.Added, p)
	return p.obj.UID
}

func (s *Server) newPod(ns, name string, containers []string) *pod {
	s.namespaces[ns] = true
	uid := types.UID(uuid.NewUUID())
	p := &pod{
		obj: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid,
				CreationTimestamp: metav1.Now(), Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{NodeName: "node-0"},
		},
		containers: map[string]*container{},
		gone:       make(chan struct{}),
		started:    s.NodeClock(),
	}
	for _, c := range containers {
		p.obj.Spec.Containers = append(p.obj.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
		// The kubelet's layout: /var/log/pods/<ns>_<pod>_<uid>/<container>/<restarts>.log.
		ct := &container{dir: filepath.Join(s.dir, "pods", fmt.Sprintf("%s_%s_%s", ns, name, uid), c)}
		if err := os.MkdirAll(ct.dir, 0o755); err != nil {
			s.t.Errorf("logserver: %v", err)
		}
		ct.cur = s.start(ct)
		p.containers[c] = ct
	}
	s.pods[ns+"/"+name] = p
	return p
}

// start creates a container's next instance, running, with an empty log file.
func (s *Server) start(c *container) *instance {
	var b [32]byte
	_, _ = rand.Read(b[:])
	in := &instance{id: hex.EncodeToString(b[:]), started: s.NodeClock(), running: true,
		path: filepath.Join(c.dir, fmt.Sprintf("%d.log", c.restarts))}
	if err := os.WriteFile(in.path, nil, 0o644); err != nil {
		s.t.Errorf("logserver: %v", err)
	}
	s.byID[in.id] = in
	return in
}

// Append writes entries to the log of a container's current instance, each as one CRI line.
func (s *Server) Append(ns, podName, name string, entries ...Entry) {
	s.mu.Lock()
	c := s.container(ns, podName, name)
	s.mu.Unlock()
	if c == nil {
		return
	}
	var b strings.Builder
	for _, e := range entries {
		stream, tag := e.Stream, "F"
		if stream == "" {
			stream = "stdout"
		}
		if e.Partial {
			tag = "P"
		}
		// containerd writes RFC3339Nano, trailing zeros dropped.
		fmt.Fprintf(&b, "%s %s %s %s\n", e.Time.UTC().Format(time.RFC3339Nano), stream, tag, e.Text)
	}
	s.files.Lock()
	defer s.files.Unlock()
	s.mu.Lock()
	path := c.cur.path
	s.mu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		s.t.Errorf("logserver: append: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		s.t.Errorf("logserver: append: %v", err)
	}
}

// Rotate does what the kubelet's log rotation does to a container's current log: the file is
// renamed away and the runtime reopens an empty one at the same path. The API serves only the
// new file.
func (s *Server) Rotate(ns, podName, name string) {
	s.mu.Lock()
	c := s.container(ns, podName, name)
	s.mu.Unlock()
	if c == nil {
		return
	}
	s.files.Lock()
	defer s.files.Unlock()
	path := c.cur.path
	// A kubelet rotates a file that grew past its size limit, never an empty one; and
	// cri-client's follow reader, which reopens the file by name on each create event, serves
	// lines again when two rotations come back to back.
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		return
	}
	rotated := fmt.Sprintf("%s.%s", path, time.Now().UTC().Format("20060102-150405.000000000"))
	if err := os.Rename(path, rotated); err != nil {
		s.t.Errorf("logserver: rotate: %v", err)
		return
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		s.t.Errorf("logserver: rotate: %v", err)
	}
}

// Terminate stops a container's current instance with an exit code; its log stays served as the
// current one until the container restarts. Open follow streams of it end.
func (s *Server) Terminate(ns, podName, name string, exitCode int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.container(ns, podName, name)
	if c == nil || !c.cur.running {
		return
	}
	c.cur.running, c.cur.finished, c.cur.exitCode = false, s.NodeClock(), exitCode
	s.record(watch.Modified, s.pods[ns+"/"+podName])
}

// Restart stops a container's current instance (if it runs) and starts a new one with a new
// container ID: the stopped one becomes the previous instance, and the one before it is removed,
// as the kubelet's garbage collection keeps one dead container per container.
func (s *Server) Restart(ns, podName, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.container(ns, podName, name)
	if c == nil {
		return
	}
	if c.cur.running {
		c.cur.running, c.cur.finished, c.cur.exitCode = false, s.NodeClock(), 1
	}
	if c.prev != nil {
		delete(s.byID, c.prev.id)
		if err := os.Remove(c.prev.path); err != nil {
			s.t.Errorf("logserver: %v", err)
		}
	}
	c.restarts++
	c.prev, c.cur = c.cur, s.start(c)
	s.record(watch.Modified, s.pods[ns+"/"+podName])
}

// Replace deletes a pod and creates a new one with the same name and containers and a new UID,
// as a StatefulSet does.
func (s *Server) Replace(ns, podName string) types.UID {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pods[ns+"/"+podName]
	if p == nil {
		s.t.Errorf("logserver: no pod %s/%s", ns, podName)
		return ""
	}
	s.delete(p)
	var names []string
	for _, c := range p.obj.Spec.Containers {
		names = append(names, c.Name)
	}
	np := s.newPod(ns, podName, names)
	s.record(watch.Added, np)
	return np.obj.UID
}

// Delete removes a pod: its log requests answer 404 from now on, and open streams end.
func (s *Server) Delete(ns, podName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pods[ns+"/"+podName]
	if p == nil {
		s.t.Errorf("logserver: no pod %s/%s", ns, podName)
		return
	}
	s.delete(p)
}

func (s *Server) delete(p *pod) {
	for _, c := range p.containers {
		c.cur.running = false
	}
	close(p.gone)
	delete(s.pods, p.obj.Namespace+"/"+p.obj.Name)
	s.record(watch.Deleted, p)
}

// Pod returns the pod as the API serves it now, or nil.
func (s *Server) Pod(ns, name string) *corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pods[ns+"/"+name]
	if p == nil {
		return nil
	}
	return p.obj.DeepCopy()
}

func (s *Server) container(ns, podName, name string) *container {
	p := s.pods[ns+"/"+podName]
	if p == nil {
		s.t.Errorf("logserver: no pod %s/%s", ns, podName)
		return nil
	}
	c := p.containers[name]
	if c == nil {
		s.t.Errorf("logserver: no container %s in pod %s/%s", name, ns, podName)
	}
	return c
}

// record brings the pod object's status up to date with its containers, gives it the next
// resourceVersion and keeps the change for watches.
func (s *Server) record(typ watch.EventType, p *pod) {
	s.rv++
	p.obj.ResourceVersion = strconv.FormatUint(s.rv, 10)
	p.obj.Status = s.status(p)
	s.events = append(s.events, event{rv: s.rv, typ: typ, pod: p.obj.DeepCopy()})
	close(s.changed)
	s.changed = make(chan struct{})
}

// status is the pod status a kubelet reports for the containers' instances.
func (s *Server) status(p *pod) corev1.PodStatus {
	st := corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.0.0.1", PodIP: "10.1.0.1",
		StartTime: &metav1.Time{Time: p.started}}
	for _, spec := range p.obj.Spec.Containers {
		c := p.containers[spec.Name]
		cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, ImageID: "docker.io/library/busybox@sha256:0",
			ContainerID: "containerd://" + c.cur.id, RestartCount: c.restarts}
		if c.cur.running {
			started := true
			cs.Ready, cs.Started = true, &started
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.cur.started)}
		} else {
			cs.State.Terminated = terminated(c.cur)
		}
		if c.prev != nil {
			cs.LastTerminationState.Terminated = terminated(c.prev)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	return st
}

func terminated(in *instance) *corev1.ContainerStateTerminated {
	reason := "Completed"
	if in.exitCode != 0 {
		reason = "Error"
	}
	return &corev1.ContainerStateTerminated{ExitCode: in.exitCode, Reason: reason, ContainerID: "containerd://" + in.id,
		StartedAt: metav1.NewTime(in.started), FinishedAt: metav1.NewTime(in.finished)}
}

// runtimeService answers the one question ReadLogs asks the runtime while following: is the
// container still running.
type runtimeService struct {
	internalapi.RuntimeService
	s *Server
}

func (r runtimeService) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	state := runtimeapi.ContainerState_CONTAINER_EXITED
	if in := r.s.byID[id]; in != nil && in.running {
		state = runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: id, State: state}}, nil
}

// serve routes the few paths a log export uses.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) >= 6 && len(parts) <= 7 && parts[0] == "apis" && parts[1] == "coordination.k8s.io" && parts[2] == "v1" &&
		parts[3] == "namespaces" && parts[5] == "leases" {
		name := ""
		if len(parts) == 7 {
			name = parts[6]
		}
		s.serveLeases(w, r, parts[4], name)
		return
	}
	if r.Method != http.MethodGet {
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "only GET is served", "")
		return
	}
	switch {
	case len(parts) == 4 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces":
		s.serveNamespace(w, parts[3])
	case len(parts) == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "pods":
		s.serveList(w, r, "")
	case len(parts) == 5 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces" && parts[4] == "pods":
		s.serveList(w, r, parts[3])
	case len(parts) == 6 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces" && parts[4] == "pods":
		s.serveGet(w, r, parts[3], parts[5])
	case len(parts) == 7 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces" && parts[4] == "pods" && parts[6] == "log":
		s.serveLog(w, r, parts[3], parts[5])
	default:
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource", "")
	}
}

// serveNamespace answers a namespace's GET, which a run that selected nothing asks to tell a
// namespace without pods from one that does not exist.
func (s *Server) serveNamespace(w http.ResponseWriter, name string) {
	s.mu.Lock()
	ok := s.namespaces[name]
	s.mu.Unlock()
	if !ok {
		st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Message: fmt.Sprintf("namespaces %q not found", name), Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound,
			Details: &metav1.StatusDetails{Name: name, Kind: "namespaces"}}
		writeJSON(w, http.StatusNotFound, &st)
		return
	}
	writeJSON(w, http.StatusOK, &corev1.Namespace{TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}})
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg, name string) {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Message: msg, Reason: reason, Code: int32(code)}
	if name != "" {
		st.Details = &metav1.StatusDetails{Name: name, Kind: "pods"}
	}
	writeJSON(w, code, &st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// protobuf encodes objects as the API server does for clients that accept
// application/vnd.kubernetes.protobuf (the command asks for pods that way).
var protobuf = func() runtime.Encoder {
	codecs := serializer.NewCodecFactory(scheme.Scheme)
	info, _ := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	return codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion)
}()

// writeObject answers with obj in protobuf when the client accepts it, else in JSON.
func writeObject(w http.ResponseWriter, r *http.Request, obj runtime.Object) {
	if accepts(r, runtime.ContentTypeProtobuf) {
		var b bytes.Buffer
		if err := protobuf.Encode(obj, &b); err == nil {
			w.Header().Set("Content-Type", runtime.ContentTypeProtobuf)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(b.Bytes())
			return
		}
	}
	writeJSON(w, http.StatusOK, obj)
}

// accepts tells whether the client accepts a media type.
func accepts(r *http.Request, mediaType string) bool {
	return strings.Contains(r.Header.Get("Accept"), mediaType)
}

func podJSON(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	p.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
	return p
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, ns, name string) {
	s.mu.Lock()
	p := s.pods[ns+"/"+name]
	var obj *corev1.Pod
	if p != nil {
		obj = podJSON(p.obj)
	}
	s.mu.Unlock()
	if obj == nil {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pods %q not found", name), name)
		return
	}
	writeObject(w, r, obj)
}

// filter is a list's or watch's namespace and selectors.
type filter struct {
	ns     string
	labels labels.Selector
	fields fields.Selector
}

func newFilter(q map[string][]string, ns string) (filter, error) {
	f := filter{ns: ns, labels: labels.Everything(), fields: fields.Everything()}
	var err error
	if v := first(q, "labelSelector"); v != "" {
		if f.labels, err = labels.Parse(v); err != nil {
			return f, err
		}
	}
	if v := first(q, "fieldSelector"); v != "" {
		if f.fields, err = fields.ParseSelector(v); err != nil {
			return f, err
		}
	}
	return f, nil
}

func (f filter) match(p *corev1.Pod) bool {
	return (f.ns == "" || p.Namespace == f.ns) && f.labels.Matches(labels.Set(p.Labels)) &&
		f.fields.Matches(fields.Set{"metadata.name": p.Name, "metadata.namespace": p.Namespace,
			"spec.nodeName": p.Spec.NodeName, "status.phase": string(p.Status.Phase)})
}

func first(q map[string][]string, key string) string {
	if v := q[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// serveList answers a list, in pages of limit pods when the client asks for them (the continue
// token is the last pod's key: pages are not a snapshot, which a client cannot tell from pods
// that came and went between its requests), or a watch.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, ns string) {
	q := r.URL.Query()
	f, err := newFilter(q, ns)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error(), "")
		return
	}
	if first(q, "watch") == "true" || first(q, "watch") == "1" {
		s.serveWatch(w, r, f)
		return
	}
	s.mu.Lock()
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
		ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(s.rv, 10)}, Items: []corev1.Pod{}}
	limit, _ := strconv.Atoi(first(q, "limit"))
	after := first(q, "continue")
	for _, k := range s.sortedKeys() {
		if after != "" && k <= after {
			continue
		}
		if p := s.pods[k]; f.match(p.obj) {
			if limit > 0 && len(list.Items) == limit {
				list.Continue = after
				break
			}
			list.Items = append(list.Items, *p.obj.DeepCopy())
			after = k
		}
	}
	s.mu.Unlock()
	writeObject(w, r, list)
}

func (s *Server) sortedKeys() []string {
	keys := make([]string, 0, len(s.pods))
	for k := range s.pods {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *Server) sortedPods() []*pod {
	keys := s.sortedKeys()
	out := make([]*pod, len(keys))
	for i, k := range keys {
		out[i] = s.pods[k]
	}
	return out
}

// serveWatch streams watch events after a resourceVersion. Without one (or "0") and with
// sendInitialEvents it first sends the current pods as ADDED, the latter followed by the
// bookmark that ends the initial events, so that client-go's reflector works with and without
// its WatchListClient feature.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request, f filter) {
	q := r.URL.Query()
	rv := first(q, "resourceVersion")
	initial := first(q, "sendInitialEvents") == "true"
	ctx := r.Context()
	if v := first(q, "timeoutSeconds"); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(secs)*time.Second)
			defer cancel()
		}
	}
	var cursor uint64
	var start []event
	s.mu.Lock()
	if rv == "" || rv == "0" || initial {
		for _, p := range s.sortedPods() {
			start = append(start, event{typ: watch.Added, pod: p.obj.DeepCopy()})
		}
		cursor = s.rv
	} else {
		n, err := strconv.ParseUint(rv, 10, 64)
		if err != nil || n > s.rv {
			s.mu.Unlock()
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("invalid resourceVersion %q", rv), "")
			return
		}
		cursor = n
	}
	s.mu.Unlock()
	if initial {
		start = append(start, event{typ: watch.Bookmark, pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			ResourceVersion: strconv.FormatUint(cursor, 10),
			Annotations:     map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	enc := json.NewEncoder(w)
	send := func(evs []event) bool {
		for _, e := range evs {
			if e.typ != watch.Bookmark && !f.match(e.pod) {
				continue
			}
			raw, err := json.Marshal(podJSON(e.pod))
			if err != nil {
				return false
			}
			if err := enc.Encode(&metav1.WatchEvent{Type: string(e.typ), Object: runtime.RawExtension{Raw: raw}}); err != nil {
				return false
			}
		}
		flusher.Flush()
		return true
	}
	if !send(start) {
		return
	}
	for {
		s.mu.Lock()
		i := sort.Search(len(s.events), func(i int) bool { return s.events[i].rv > cursor })
		evs := s.events[i:len(s.events):len(s.events)]
		changed := s.changed
		s.mu.Unlock()
		if len(evs) > 0 {
			if !send(evs) {
				return
			}
			cursor = evs[len(evs)-1].rv
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		}
	}
}

// serveLog answers a log request as the API server and kubelet do together.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request, ns, name string) {
	opts, err := logOptions(r.URL.Query())
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error(), "")
		return
	}
	// A hook set for one user applies to that user's requests only.
	user := r.Header.Get("Impersonate-User")
	s.mu.Lock()
	hook, shorten := s.onLog, s.shorten
	if s.onLogUser != "" && user != s.onLogUser {
		hook = nil
	}
	if s.shortenUser != "" && user != s.shortenUser {
		shorten = nil
	}
	s.mu.Unlock()
	if hook != nil {
		hook(ns, name, opts.DeepCopy())
	}
	keep, toLineEnd := int64(-1), false
	if shorten != nil {
		keep, toLineEnd = shorten(ns, name, opts.DeepCopy())
	}

	s.mu.Lock()
	p := s.pods[ns+"/"+name]
	if p == nil {
		s.mu.Unlock()
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pods %q not found", name), name)
		return
	}
	cname := opts.Container
	if cname == "" {
		if len(p.obj.Spec.Containers) != 1 {
			var names []string
			for _, c := range p.obj.Spec.Containers {
				names = append(names, c.Name)
			}
			s.mu.Unlock()
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
				fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", name, names), "")
			return
		}
		cname = p.obj.Spec.Containers[0].Name
	}
	c := p.containers[cname]
	if c == nil {
		s.mu.Unlock()
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("container %s is not valid for pod %s", cname, name), "")
		return
	}
	if c.requests == nil {
		c.requests, c.follows, c.tailed = map[string]int{}, map[string]int{}, map[string]bool{}
	}
	c.requests[r.Header.Get("Impersonate-User")]++
	tail := opts.TailLines != nil && *opts.TailLines > 0
	if tail {
		s.tails++
		if opts.Follow {
			s.followedTails++
		}
	} else if c.tailed[user] {
		s.tailsRetried++
	}
	c.tailed[user] = tail
	if opts.Follow {
		c.follows[r.Header.Get("Impersonate-User")]++
	}
	// The kubelet's choice: previous=true is the last terminated instance, previous=false the
	// newest one, running or not.
	in := c.cur
	if opts.Previous {
		in = c.prev
	}
	if in == nil {
		s.mu.Unlock()
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("previous terminated container %q in pod %q not found", cname, name), "")
		return
	}
	path, id, gone := in.path, in.id, p.gone
	s.mu.Unlock()

	// The reader logs every client that hangs up, which tests do on purpose.
	ctx, cancel := context.WithCancel(klog.NewContext(r.Context(), logr.Discard()))
	defer cancel()
	go func() {
		select {
		case <-gone:
		case <-s.closed:
		case <-ctx.Done():
		}
		cancel()
	}()
	lo := &logs.LogOptions{Follow: opts.Follow, Timestamp: opts.Timestamps, TailLines: opts.TailLines, LimitBytes: opts.LimitBytes}
	switch {
	case opts.SinceTime != nil:
		lo.Since = opts.SinceTime.Time
	case opts.SinceSeconds != nil:
		lo.Since = time.Now().Add(-time.Duration(*opts.SinceSeconds) * time.Second)
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w: w, f: w.(http.Flusher)}
	fw.f.Flush()
	if !opts.Follow {
		s.files.RLock()
		defer s.files.RUnlock()
	}
	// Errors after the header cannot be reported but by ending the body, which is what a
	// kubelet does too.
	var out io.Writer = fw
	if keep >= 0 {
		out = &shortWriter{w: fw, left: keep, toLineEnd: toLineEnd}
	}
	_ = logs.ReadLogs(ctx, path, id, lo, runtimeService{s: s}, out, out)
}

type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (w flushWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.f.Flush()
	return n, err
}

// logOptions reads the query of a log request, as the API server converts it.
func logOptions(q map[string][]string) (*corev1.PodLogOptions, error) {
	o := &corev1.PodLogOptions{Container: first(q, "container")}
	var err error
	for _, b := range []struct {
		key string
		to  *bool
	}{{"previous", &o.Previous}, {"follow", &o.Follow}, {"timestamps", &o.Timestamps}} {
		if v := first(q, b.key); v != "" {
			if *b.to, err = strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("invalid %s %q: %w", b.key, v, err)
			}
		}
	}
	for _, n := range []struct {
		key string
		to  **int64
	}{{"sinceSeconds", &o.SinceSeconds}, {"tailLines", &o.TailLines}, {"limitBytes", &o.LimitBytes}} {
		if v := first(q, n.key); v != "" {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid %s %q: %w", n.key, v, err)
			}
			*n.to = &x
		}
	}
	if v := first(q, "sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("invalid sinceTime %q: %w", v, err)
		}
		mt := metav1.NewTime(t)
		o.SinceTime = &mt
	}
	if o.SinceTime != nil && o.SinceSeconds != nil {
		return nil, fmt.Errorf("at most one of sinceTime or sinceSeconds may be specified")
	}
	return o, nil
}
