package cmd

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// lockedBuffer is stderr read by the test while the follower writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The status line counts the lines that open streams stored, not only those of exports that
// ended: a follower's streams stay open for as long as the containers run, and it said "0 lines
// exported, 0 lines/s" while it stored thousands a second.
func TestFollowStatusCountsOpenStreams(t *testing.T) {
	srv := logserver.New(t)
	srv.AddPod("default", "p", "app")
	srv.AddPod("default", "q", "app")
	bhLines(srv, "default", "p", "app", "before", 3)
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	errOut := &lockedBuffer{}
	streams.ErrOut = errOut
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		c := NewCmd(streams)
		c.SetArgs([]string{"--kubeconfig", srv.Kubeconfig(), "-d", t.TempDir(), "-f", "--summary-interval", "200ms"})
		done <- c.ExecuteContext(ctx)
	}()
	waitStatus := func(lines int) {
		t.Helper()
		// Both streams open the whole time: none of their exports has ended.
		want := regexp.MustCompile(fmt.Sprintf(`following 2 containers \(0 stopped and stored\): 2 streams open, .* %d lines \(\d+ bytes\) exported, \d+ lines/s`, lines))
		deadline := time.Now().Add(20 * time.Second)
		for !want.MatchString(errOut.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("the status never said %d lines with both streams open:\n%s", lines, errOut)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStatus(3)
	bhLines(srv, "default", "p", "app", "during", 2)
	bhLines(srv, "default", "q", "app", "during", 4)
	waitStatus(9)
	if !regexp.MustCompile(`[1-9][0-9]* lines/s`).MatchString(errOut.String()) {
		t.Fatalf("the rate never said lines came:\n%s", errOut)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follower: %v\n%s", err, errOut)
	}
}
