package e2e

import (
	"strings"
	"testing"
)

// kubectl finds the plugin; its help speaks as `kubectl logexport` and shows examples.
func TestHelpAndVersion(t *testing.T) {
	res := logexport(t, "--help")
	if res.code != 0 || !strings.Contains(res.stdout, "kubectl logexport [REGEX...] [flags]") ||
		!strings.Contains(res.stdout, "kubectl logexport --all-namespaces -p 'redis.*'") {
		t.Fatalf("help: exit %d\n%s", res.code, res.stdout)
	}
	res = logexport(t, "version")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "kubectl-logexport ") {
		t.Fatalf("version: exit %d, %q", res.code, res.stdout)
	}
}

// Completion lists what the cluster has: pod names for the patterns and -p (in the namespace the
// command line selects), namespaces for -n, each filtered by what was typed.
func TestCompletionFromCluster(t *testing.T) {
	ns := newNamespace(t)
	for _, name := range []string{"redis-0", "redis-1", "web"} {
		createPod(t, ns, pod{name: name, containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "x")}}})
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"-n", ns, "red"}, []string{"redis-0", "redis-1"}},
		{[]string{"-n", ns, "-p", ""}, []string{"redis-0", "redis-1", "web"}},
		{[]string{"-n", ns, "--exclude-pod", "w"}, []string{"web"}},
		{[]string{"-n", ns[:len(ns)-2]}, []string{ns}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := logexport(t, append([]string{"__complete"}, tt.args...)...)
			lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
			// The last line is cobra's directive, ":4" (no file completion).
			if res.code != 0 || lines[len(lines)-1] != ":4" || strings.Join(lines[:len(lines)-1], ",") != strings.Join(tt.want, ",") {
				t.Fatalf("exit %d, completions %q, want %q then :4", res.code, lines, tt.want)
			}
		})
	}
}
