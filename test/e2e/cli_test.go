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
