package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Contexts, clusters and users complete from the kubeconfig; namespaces and pods from the cluster
// (covered end to end by hack/release-check.sh).
func TestCompletion(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "config")
	err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: alice
contexts:
- name: prod-admin
  context: {cluster: prod, user: alice}
- name: staging
  context: {cluster: prod, user: alice}
current-context: staging
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--context", "prod"}, "prod-admin"},
		{[]string{"--cluster", ""}, "prod"},
		{[]string{"--user", "a"}, "alice"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			streams, _, out, _ := genericiooptions.NewTestIOStreams()
			cmd := NewCmd(streams)
			cmd.SetOut(out)
			cmd.SetArgs(append([]string{"__complete", "--kubeconfig", kc}, tt.args...))
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) < 2 || strings.Join(lines[:len(lines)-1], ",") != tt.want {
				t.Fatalf("completions %q, want %q", lines, tt.want)
			}
		})
	}
	if c := NewCmd(genericiooptions.IOStreams{}); c.ValidArgsFunction == nil {
		t.Fatal("no completion for the pod patterns")
	}
}
