package cmd

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// --help lists the plugin's flags first, then the kubeconfig flags, then klog's; -n stays with -A.
func TestHelpGroupsFlags(t *testing.T) {
	tests := []struct {
		args []string
		// Each flag must be listed in the section named before it, in this order.
		want []string
		// Flags that must not be listed at all.
		absent []string
	}{
		{
			args: []string{"--help"},
			want: []string{"Usage:", "kubectl logexport [REGEX...] [flags]", "Flags:", "--all-namespaces", "--dir", "--namespace", "--pod",
				"Kubeconfig Flags:", "--as ", "--context", "--kubeconfig", "--token",
				"Global Flags:", "-v, --v", "--vmodule"},
		},
		{
			args:   []string{"version", "--help"},
			want:   []string{"kubectl logexport version [flags]", "Flags:", "--help", "Global Flags:", "-v, --v"},
			absent: []string{"Kubeconfig Flags:", "--kubeconfig", "--dir"},
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			streams, _, out, _ := genericiooptions.NewTestIOStreams()
			c := NewCmd(streams)
			c.SetOut(out)
			c.SetArgs(tt.args)
			if err := c.Execute(); err != nil {
				t.Fatal(err)
			}
			help := out.String()
			rest := help
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("%q missing or out of order in\n%s", w, help)
				}
				rest = rest[i+len(w):]
			}
			for _, a := range tt.absent {
				if strings.Contains(help, a) {
					t.Fatalf("%q listed in\n%s", a, help)
				}
			}
			// Every section lists each flag once: a kubeconfig flag is not also among the plugin's.
			if n := strings.Count(help, "--kubeconfig string"); n > 1 {
				t.Fatalf("--kubeconfig listed %d times", n)
			}
		})
	}
}

// The completion scripts register the standalone binary's name, which is what the shell runs.
func TestCompletionScriptsNameTheBinary(t *testing.T) {
	tests := []struct{ shell, want string }{
		{"bash", "complete -o default -F __start_kubectl-logexport kubectl-logexport"},
		{"zsh", "compdef _kubectl-logexport kubectl-logexport"},
		{"fish", "complete -c kubectl-logexport -e"},
		{"powershell", "Register-ArgumentCompleter -CommandName 'kubectl-logexport'"},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			streams, _, out, _ := genericiooptions.NewTestIOStreams()
			c := NewCmd(streams)
			c.SetOut(out)
			c.SetArgs([]string{"completion", tt.shell})
			if err := c.Execute(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Fatalf("%s script lacks %q", tt.shell, tt.want)
			}
		})
	}
}
