package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// TestExportAsListed: a run exports the pods of one selection as it lists them, a page at a time.
// A listing whose continue token expires while the exports hold it back starts again and still
// exports every container once; one whose next page fails keeps what the pages before it gave,
// says so, and fails.
func TestExportAsListed(t *testing.T) {
	const pods = 35
	tests := []struct {
		name   string
		fail   func(*logserver.Server)
		stored int
		err    string
	}{
		{name: "every page", stored: pods},
		{name: "the listing expires, and twice more before a new pod", fail: func(s *logserver.Server) { s.FailPages(3, http.StatusGone, metav1.StatusReasonExpired) }, stored: pods},
		{name: "the second page fails", fail: func(s *logserver.Server) {
			s.FailPages(100, http.StatusInternalServerError, metav1.StatusReasonInternalError)
		},
			stored: 10, err: "(the 10 containers listed before it are exported)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := logserver.New(t)
			at := time.Now().Add(-time.Hour).UTC()
			for i := range pods {
				name := fmt.Sprintf("pod-%02d", i)
				srv.AddPod("default", name, "app")
				srv.Append("default", name, "app", logserver.Entry{Time: at, Text: name + " line"})
			}
			if tt.fail != nil {
				tt.fail(srv)
			}
			dir := t.TempDir()
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			c := NewCmd(streams)
			c.SetArgs([]string{"--kubeconfig", srv.Kubeconfig(), "-n", "default", "-d", dir, "-o", "json", "--chunk-size", "10", "--max-log-requests", "1"})
			err := c.ExecuteContext(context.Background())
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want %q; stderr %s", err, tt.err, errOut)
			}
			var s Summary
			if err := json.Unmarshal(out.Bytes(), &s); err != nil {
				t.Fatalf("summary: %v\n%s", err, out)
			}
			if s.Selected != tt.stored || len(s.Containers) != tt.stored {
				t.Fatalf("summary of %d containers (%d rows), want %d", s.Selected, len(s.Containers), tt.stored)
			}
			for i := range pods {
				name := fmt.Sprintf("pod-%02d", i)
				b, err := os.ReadFile(filepath.Join(dir, "default", name, "app.log"))
				switch {
				case i < tt.stored && (err != nil || string(b) != name+" line\n"):
					t.Errorf("%s: stored %q, %v", name, b, err)
				case i < tt.stored && (s.Containers[i].Pod != name || s.Containers[i].Lines != 1):
					t.Errorf("row %d: %+v", i, s.Containers[i])
				case i >= tt.stored && err == nil:
					t.Errorf("%s: stored though its page failed", name)
				}
			}
		})
	}
}
