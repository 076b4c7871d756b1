package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// http2Conn is what Go's HTTP/2 client logs (GODEBUG=http2debug=1) for every connection it makes.
const http2Conn = "http2: Transport creating client conn"

// A one-shot run reads its logs from the API server over HTTP/1.1 (cheaper per byte); a follower
// keeps HTTP/2, its streams on one connection. The follower is the check that the API server
// offers HTTP/2 and that the debug log would show it.
func TestLogRequestsProtocol(t *testing.T) {
	ns := newNamespace(t)
	l := newLog(t).add(at(0, 0), "one", "two")
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: l}}})
	waitServed(t, ns, "web", "app", false)
	debug := []string{"GODEBUG=http2debug=1"}

	dir := t.TempDir()
	res := logexportEnv(t, debug, "-n", ns, "-d", dir)
	if res.code != 0 {
		t.Fatalf("one-shot run: exit %d\n%s", res.code, res.stderr)
	}
	if strings.Contains(res.stderr, http2Conn) {
		t.Errorf("a one-shot run made an HTTP/2 connection:\n%s", res.stderr)
	}
	assertFile(t, filepath.Join(dir, ns, "web", "app.log"), lines("one", "two"))

	dir = t.TempDir()
	f := startFollowEnv(t, debug, "-n", ns, "-d", dir)
	waitContent(t, filepath.Join(dir, ns, "web", "app.log"), lines("one", "two"))
	f.stop(syscall.SIGTERM)
	if !strings.Contains(f.stderr.String(), http2Conn) {
		t.Errorf("the follower made no HTTP/2 connection:\n%s", f.stderr)
	}
}
