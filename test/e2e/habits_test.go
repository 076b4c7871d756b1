package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// --summary=changed lists only the containers that got lines (or a gap, an error, did not start),
// with the totals of all; none lists none. Gaps, errors and the totals line stay on stderr.
func TestSummaryChanged(t *testing.T) {
	ns := newNamespace(t)
	run := map[string]string{"e2e": "run-" + randID()}
	busy, idle := newLog(t).add(at(0, 0), "b1"), newLog(t).add(at(0, 0), "i1")
	createPod(t, ns, pod{name: "busy", labels: run, containers: []container{{name: "app", log: busy}}})
	createPod(t, ns, pod{name: "idle", labels: run, containers: []container{{name: "app", log: idle}, {name: "sidecar", log: newLog(t).add(at(0, 0), "s1")}}})
	dir := t.TempDir()
	first := export(t, "-n", ns, "-d", dir, "--summary=changed")
	sameList(t, "first run, changed", exported(first), []string{ns + "/busy/app", ns + "/idle/app", ns + "/idle/sidecar"})

	busy.add(at(5, 0), "b2", "b3")
	s := export(t, "-n", ns, "-d", dir, "--summary=changed")
	sameList(t, "second run, changed", exported(s), []string{ns + "/busy/app"})
	if s.Selected != 3 || s.Lines != 2 || find(t, s, ns, "busy", "app").Lines != 2 {
		t.Fatalf("totals: selected %d, lines %d, want 3 and 2: %+v", s.Selected, s.Lines, s)
	}
	assertFile(t, filepath.Join(dir, ns, "busy", "app.log"), lines("b1", "b2", "b3"))

	// The table: one row under the header; the totals line counts every container.
	busy.add(at(6, 0), "b4")
	res := logexport(t, "-n", ns, "-d", dir, "--summary=changed")
	rows := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if res.code != 0 || len(rows) != 2 || !strings.HasPrefix(rows[0], "NAMESPACE") || !strings.Contains(rows[1], "busy") ||
		!strings.Contains(res.stderr, "exported 1 lines (3 bytes) from 3 containers into "+dir) {
		t.Fatalf("table: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	// Nothing new: no rows, no header.
	res = logexport(t, "-n", ns, "-d", dir, "--summary=changed")
	if res.code != 0 || res.stdout != "" || !strings.Contains(res.stderr, "exported 0 lines (0 bytes) from 3 containers") {
		t.Fatalf("nothing new: exit %d\nstdout:\n%q\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	// none: the totals only, though a container got lines.
	idle.add(at(7, 0), "i2")
	res = logexport(t, "-n", ns, "-d", dir, "--summary=none")
	if res.code != 0 || res.stdout != "" || !strings.Contains(res.stderr, "exported 1 lines (3 bytes) from 3 containers") {
		t.Fatalf("none: exit %d\nstdout:\n%q\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	assertFile(t, filepath.Join(dir, ns, "idle", "app.log"), lines("i1", "i2"))
	oneLineError(t, logexport(t, "-n", ns, "-d", dir, "--summary=some"), `invalid --summary "some": use all, changed or none`)

	// The CronJobs run with changed: their second run, with nothing new, prints no table.
	for _, overlay := range []string{"cronjob", "namespaced"} {
		if args := renderedCronJob(t, overlay).args; !slices.Contains(args, "--summary=changed") {
			t.Errorf("the %s overlay's CronJob runs %v, without --summary=changed", overlay, args)
		}
	}
	cronDir := t.TempDir()
	args := append(renderedCronJob(t, "cronjob").argsWith(t, cronDir), "-l", "e2e="+run["e2e"])
	if res := logexport(t, args...); res.code != 0 || strings.Count(res.stdout, "\n") != 4 {
		t.Fatalf("the CronJob's first run: exit %d, want a header and 3 rows:\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := logexport(t, args...); res.code != 0 || res.stdout != "" || !strings.Contains(res.stderr, "from 3 containers") {
		t.Fatalf("the CronJob's second run: exit %d, want no table:\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// A follower's summary with --summary=changed lists the containers that got lines while it ran.
func TestFollowSummaryChanged(t *testing.T) {
	ns := newNamespace(t)
	busy := newLog(t).add(at(0, 0), "b1")
	createPod(t, ns, pod{name: "busy", containers: []container{{name: "app", log: busy}}})
	createPod(t, ns, pod{name: "idle", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "i1")}}})
	dir := t.TempDir()
	export(t, "-n", ns, "-d", dir)
	f := startWatchedFollow(t, "-n", ns, "-d", dir, "-o", "json", "--summary=changed")
	busy.add(at(5, 0), "b2")
	waitContent(t, filepath.Join(dir, ns, "busy", "app.log"), lines("b1", "b2"))
	code, s := f.stopWithSummary()
	if code != 0 {
		t.Fatalf("follower exit %d:\n%s", code, f.stderr)
	}
	sameList(t, "follow, changed", exported(s), []string{ns + "/busy/app"})
	if s.Selected != 2 || s.Lines != 1 {
		t.Fatalf("totals: selected %d, lines %d, want 2 and 1", s.Selected, s.Lines)
	}
}

// --dry-run takes kubectl's values: alone or =client it writes nothing, =none exports, =server is
// refused in one line.
func TestDryRunValues(t *testing.T) {
	ns := newNamespace(t)
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "hello")}}})
	for _, flag := range []string{"--dry-run", "--dry-run=client"} {
		dir := filepath.Join(t.TempDir(), "out")
		res := logexport(t, "-n", ns, "-d", dir, flag)
		if res.code != 0 || !strings.HasPrefix(res.stdout, "NAMESPACE") || !strings.Contains(res.stdout, filepath.Join(dir, ns, "web", "app.log")) {
			t.Fatalf("%s: exit %d\n%s%s", flag, res.code, res.stdout, res.stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s created %s (%v)", flag, dir, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "out")
	sameList(t, "--dry-run=none", exported(export(t, "-n", ns, "-d", dir, "--dry-run=none")), []string{ns + "/web/app"})
	assertFile(t, filepath.Join(dir, ns, "web", "app.log"), lines("hello"))

	server := filepath.Join(t.TempDir(), "out")
	oneLineError(t, logexport(t, "-n", ns, "-d", server, "--dry-run=server"), `"server" is not supported (an export only reads from the cluster): use --dry-run=client`)
	oneLineError(t, logexport(t, "-n", ns, "-d", server, "--dry-run=yes"), `must be "none", "client" or "server"`)
	if _, err := os.Stat(server); !os.IsNotExist(err) {
		t.Fatalf("a refused dry run created %s (%v)", server, err)
	}
}

// kubectl logexport --help: the plugin's flags, then the kubeconfig flags, then klog's.
func TestHelpGroups(t *testing.T) {
	res := logexport(t, "--help")
	if res.code != 0 {
		t.Fatalf("exit %d", res.code)
	}
	rest := res.stdout
	// Each must follow the one before it: the sections in this order, each flag in its section.
	for _, w := range []string{"kubectl logexport [REGEX...] [flags]", "\nFlags:\n", "--all-namespaces", "--dry-run", "--namespace", "--summary string",
		"\nKubeconfig Flags:\n", "--context", "--kubeconfig", "--token",
		"\nGlobal Flags:\n", "-v, --v", "--vmodule", `Use "kubectl logexport [command] --help"`} {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%q missing or out of place in:\n%s", w, res.stdout)
		}
		rest = rest[i+len(w):]
	}
}

// Nothing matched is said on stderr, as kubectl get says it, with exit 0; a namespace that does not
// exist fails (exit 1), but only when the API server could say so.
func TestNoMatch(t *testing.T) {
	ns := newNamespace(t)
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "hello")}}})
	missing := "nosuchns-" + randID()
	dir := filepath.Join(t.TempDir(), "out")

	noMatch := func(res runResult, want string) {
		t.Helper()
		if res.code != 0 || res.stdout != "" || !strings.HasPrefix(res.stderr, want+"\n") {
			t.Fatalf("exit %d, stdout %q, stderr %q: want exit 0, no stdout, stderr beginning %q", res.code, res.stdout, res.stderr, want)
		}
	}
	noMatch(logexport(t, "-n", ns, "-d", dir, "redis"), "No pods matched in namespace "+ns+".")
	noMatch(logexport(t, "-n", ns, "-d", dir, "-c", "db", "--dry-run"), "No containers matched in namespace "+ns+".")
	noMatch(logexport(t, "-A", "-d", dir, "-p", "no-such-pod-"+randID(), "--dry-run"), "No pods matched in any namespace.")

	for _, args := range [][]string{{}, {"--dry-run"}, {"-f"}} {
		gone := filepath.Join(t.TempDir(), "out")
		oneLineError(t, logexport(t, append([]string{"-n", missing, "-d", gone}, args...)...), "error: namespace "+missing+" does not exist")
		// A one-shot run holds the directory before it lists (its journal records the failed run);
		// a dry run never writes, and a follower looks before it starts.
		if _, err := os.Stat(gone); len(args) > 0 && !os.IsNotExist(err) {
			t.Fatalf("%v: a run on a missing namespace created %s (%v)", args, gone, err)
		}
	}

	// The deploy's cluster-wide rights: pods everywhere, namespaces list only (no get).
	cluster := serviceAccountKubeconfig(t, ns, nil, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}},
	})
	oneLineError(t, logexportEnv(t, []string{"KUBECONFIG=" + cluster}, "-n", missing, "-d", dir), "error: namespace "+missing+" does not exist")
	noMatch(logexportEnv(t, []string{"KUBECONFIG=" + cluster}, "-n", ns, "-d", dir, "redis"), "No pods matched in namespace "+ns+".")

	// Pods everywhere but no rights on namespaces: nothing is claimed of the namespace.
	blind := newNamespace(t)
	podsOnly := serviceAccountKubeconfig(t, blind, nil, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	})
	noMatch(logexportEnv(t, []string{"KUBECONFIG=" + podsOnly}, "-n", missing, "-d", dir), "No pods matched in namespace "+missing+".")
}

// The standalone binary completes through real bash with the script it prints; kubectl completes
// the plugin through kubectl_complete-logexport, which calls the same __complete.
func TestStandaloneCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("needs bash")
	}
	ns := newNamespace(t)
	for _, name := range []string{"redis-0", "redis-1", "web"} {
		createPod(t, ns, pod{name: name, containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "x")}}})
	}
	env := append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+kubeconfig)
	// The script wants the bash-completion package for _get_comp_words_by_ref; where it is not
	// installed, a minimal one that splits as bash did (no word contains = or :) stands in.
	script := `
if [ -r /usr/share/bash-completion/bash_completion ]; then
  . /usr/share/bash-completion/bash_completion
else
  _get_comp_words_by_ref() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
fi
source <(kubectl-logexport completion bash) || exit 3
complete -p kubectl-logexport || exit 4
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
"$(complete -p kubectl-logexport | sed -n 's/.* -F \([^ ]*\) .*/\1/p')" 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"
`
	tests := []struct {
		words []string
		want  []string
	}{
		{[]string{"kubectl-logexport", "-n", ns, "red"}, []string{"redis-0", "redis-1"}},
		{[]string{"kubectl-logexport", "-n", ns[:len(ns)-2]}, []string{ns}},
		{[]string{"kubectl-logexport", "--summary", "c"}, []string{"changed"}},
		{[]string{"kubectl-logexport", "comp"}, []string{"completion"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.words[1:], " "), func(t *testing.T) {
			c := exec.Command(bash, append([]string{"-c", script, "bash"}, tt.words...)...)
			c.Env = env
			var stdout, stderr bytes.Buffer
			c.Stdout, c.Stderr = &stdout, &stderr
			if err := c.Run(); err != nil {
				t.Fatalf("bash: %v\n%s%s", err, stdout.String(), stderr.String())
			}
			out := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			// The first line is the registration, for the binary's own name.
			if out[0] != "complete -o default -F __start_kubectl-logexport kubectl-logexport" {
				t.Fatalf("registered %q", out[0])
			}
			if got := strings.Join(out[1:], ","); got != strings.Join(tt.want, ",") {
				t.Fatalf("completions %q, want %q\nstderr: %s", out[1:], tt.want, stderr.String())
			}
		})
	}

	// kubectl's own completion of the plugin: kubectl __complete logexport ... runs the helper.
	helperDir := t.TempDir()
	helper, err := os.ReadFile(filepath.Join(repoRoot, "cmd", "kubectl-logexport", "kubectl_complete-logexport"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(helperDir, "kubectl_complete-logexport"), helper, 0o755); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("kubectl", "__complete", "logexport", "-n", ns, "red")
	c.Env = append(os.Environ(), "PATH="+helperDir+string(os.PathListSeparator)+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+kubeconfig)
	out, err := c.Output()
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); err != nil || strings.Join(got, ",") != "redis-0,redis-1,:4" {
		t.Fatalf("kubectl __complete logexport: %v, %q", err, got)
	}
}
