package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/logexport/kubectl-logexport/pkg/cmd"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// oneLineError checks that a failed run said why in exactly one line on stderr.
func oneLineError(t *testing.T, res runResult, want string) {
	t.Helper()
	if res.code != 1 {
		t.Fatalf("exit %d, want 1", res.code)
	}
	msg := strings.TrimRight(res.stderr, "\n")
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "error: ") || !strings.Contains(msg, want) {
		t.Fatalf("stderr %q: want one line \"error: ...%s...\"", res.stderr, want)
	}
}

// Bad input gets one clear line and leaves what is stored alone.
func TestBadInput(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "kept")
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: log}}})
	export(t, "-n", ns, "-d", dir)
	file := filepath.Join(dir, ns, "web", "app.log")
	state := checkpointFile(dir, ns)
	before := snapshot(t, file, state)
	log.add(at(1, 0), "new")

	aFile := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(aFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		// The unreachable server proves the pattern is refused before any API call.
		{"bad regex", []string{"-p", "redis(", "--server", "https://127.0.0.1:1"}, `invalid pod pattern "redis("`},
		{"bad container regex", []string{"-c", "[", "--server", "https://127.0.0.1:1"}, `invalid --container pattern "["`},
		{"unknown context", []string{"--context", "nope"}, `context "nope" does not exist`},
		{"unreachable cluster", []string{"--server", "https://127.0.0.1:1", "--insecure-skip-tls-verify"}, "connection refused"},
		{"output format", []string{"-o", "yaml"}, `unsupported output format "yaml"`},
		{"max log requests", []string{"--max-log-requests", "0"}, "--max-log-requests must be at least 1"},
		{"since and since-time", []string{"--since", "1h", "--since-time", "2024-01-01T00:00:00Z"}, "cannot be used together"},
		{"since-time", []string{"--since-time", "yesterday"}, `invalid --since-time "yesterday"`},
		{"timestamps mode", []string{"--timestamps"}, "was created without --timestamps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oneLineError(t, logexport(t, append([]string{"-n", ns, "-d", dir}, tt.args...)...), tt.want)
		})
	}
	t.Run("directory not writable", func(t *testing.T) {
		oneLineError(t, logexport(t, "-n", ns, "-d", filepath.Join(aFile, "logs")), "not a directory")
	})
	if after := snapshot(t, file, state); after != before {
		t.Fatalf("bad input changed the export:\n%s\n%s", before, after)
	}
}

// A log file without a checkpoint, or with corrupt checkpoints, is refused rather than risking
// duplicates; a new container of a namespace that lost its checkpoints is still exported, and
// other namespaces are not affected.
func TestStateProblemsRefused(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	dir := t.TempDir()
	createPod(t, ns, pod{name: "a", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "a")}}})
	createPod(t, ns, pod{name: "b", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "b")}}})
	createPod(t, ns, pod{name: "c", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "c")}}})
	otherLog := newLog(t).add(at(0, 0), "o1")
	createPod(t, other, pod{name: "o", containers: []container{{name: "app", log: otherLog}}})
	export(t, "-n", ns, "-d", dir, "a|b")
	if err := os.Remove(checkpointFile(dir, ns)); err != nil {
		t.Fatal(err)
	}
	run := func(ns string) cmd.Summary {
		t.Helper()
		res := logexport(t, "-n", ns, "-d", dir, "-o", "json")
		if res.code != 1 {
			t.Fatalf("exit %d, want 1", res.code)
		}
		return decode(t, res.stdout)
	}
	s := run(ns)
	for _, p := range []string{"a", "b"} {
		if c := find(t, s, ns, p, "app"); c.Status != "failed" || !strings.Contains(c.Error, "has no checkpoint") {
			t.Fatalf("%s without checkpoint: %+v", p, c)
		}
	}
	if c := find(t, s, ns, "c", "app"); c.Status != "ok" || c.Lines != 1 {
		t.Fatalf("c: %+v", c)
	}

	export(t, "-n", other, "-d", dir)
	f, err := os.OpenFile(checkpointFile(dir, ns), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("{\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s = run(ns)
	for _, p := range []string{"a", "b", "c"} {
		if c := find(t, s, ns, p, "app"); c.Status != "failed" || !strings.Contains(c.Error, "is corrupt") {
			t.Fatalf("%s with corrupt checkpoints: %+v", p, c)
		}
	}
	otherLog.add(at(1, 0), "o2")
	export(t, "-n", other, "-d", dir)
	for p, want := range map[string]string{"a": "a", "b": "b", "c": "c"} {
		assertFile(t, filepath.Join(dir, ns, p, "app.log"), lines(want))
	}
	assertFile(t, filepath.Join(dir, other, "o", "app.log"), lines("o1", "o2"))
}

// With a ServiceAccount that may read one namespace only, -A exports that namespace and names the
// ones it may not read; -n on a forbidden namespace fails with one line.
func TestForbiddenNamespace(t *testing.T) {
	allowed, denied := newNamespace(t), newNamespace(t)
	run := "run-" + randID()
	labels := map[string]string{"e2e": run}
	createPod(t, allowed, pod{name: "ok", labels: labels, containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "visible")}}})
	createPod(t, denied, pod{name: "secret", labels: labels, containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "hidden")}}})
	kc := serviceAccountKubeconfig(t, allowed, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
	}, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}},
	})
	dir := t.TempDir()
	env := []string{"KUBECONFIG=" + kc}
	res := logexportEnv(t, env, "-A", "-l", "e2e="+run, "-d", dir, "-o", "json")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1 (a namespace could not be read)", res.code)
	}
	s := decode(t, res.stdout)
	sameList(t, "exported", exported(s), []string{allowed + "/ok/app"})
	named := false
	for _, n := range s.Namespaces {
		named = named || (n.Namespace == denied && strings.Contains(n.Error, "forbidden"))
	}
	if !named {
		t.Fatalf("summary does not name %s as forbidden: %+v", denied, s.Namespaces)
	}
	assertFile(t, filepath.Join(dir, allowed, "ok", "app.log"), lines("visible"))
	if _, err := os.Stat(filepath.Join(dir, denied)); !os.IsNotExist(err) {
		t.Fatalf("something was written for the forbidden namespace: %v", err)
	}
	oneLineError(t, logexportEnv(t, env, "-n", denied, "-d", dir), "forbidden")
	oneLineError(t, logexportEnv(t, env, "-f", "-n", denied, "-d", dir), "forbidden")
}

// serviceAccountKubeconfig creates a ServiceAccount in ns bound to the rules (namespaced) and
// clusterRules, and returns a kubeconfig that authenticates with its token.
func serviceAccountKubeconfig(t *testing.T, ns string, rules, clusterRules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	name := "exporter"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	must(err)
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}
	_, err = client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{})
	must(err)
	_, err = client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}, Subjects: subject}, metav1.CreateOptions{})
	must(err)
	if len(clusterRules) > 0 {
		_, err = client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns}, Rules: clusterRules}, metav1.CreateOptions{})
		must(err)
		_, err = client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: ns}, Subjects: subject}, metav1.CreateOptions{})
		must(err)
		t.Cleanup(func() {
			_ = client.RbacV1().ClusterRoleBindings().Delete(ctx, ns, metav1.DeleteOptions{})
			_ = client.RbacV1().ClusterRoles().Delete(ctx, ns, metav1.DeleteOptions{})
		})
	}
	tok, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	must(err)
	admin, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	must(err)
	cluster := &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthority: admin.CAFile, CertificateAuthorityData: admin.CAData, InsecureSkipTLSVerify: admin.Insecure}
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"local": cluster},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{name: {Token: tok.Status.Token}},
		Contexts:       map[string]*clientcmdapi.Context{name: {Cluster: "local", AuthInfo: name, Namespace: ns}},
		CurrentContext: name,
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	must(clientcmd.WriteToFile(cfg, p))
	return p
}

// A full disk fails the run with one clear line; the stored file and its checkpoint stay
// consistent, and once there is room the next run completes the export exactly.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	ns := newNamespace(t)
	want := bigPod(t, ns, "big", 30000) // about 3.5 MB
	res := logexport(t, "-n", ns, "-d", dir)
	if res.code != 1 || !strings.Contains(res.stderr, "no space left on device") {
		t.Fatalf("full disk: exit %d, %q", res.code, res.stderr)
	}
	file := filepath.Join(dir, ns, "big", "app.log")
	var cp struct{ Size int64 }
	if _, err := os.Stat(checkpointFile(dir, ns)); err == nil {
		if line := checkpointLine(t, dir, ns, "big", "app"); line != "" {
			if err := json.Unmarshal([]byte(line), &cp); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A new log is renamed into place at its first checkpoint: with none saved, it is absent.
	got, err := os.ReadFile(file)
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && cp.Size == 0) {
		t.Fatalf("reading export: %v", err)
	}
	if int64(len(got)) != cp.Size || !strings.HasPrefix(want, string(got)) {
		t.Fatalf("after the failure the file has %d bytes, its checkpoint says %d (prefix of the log: %v)", len(got), cp.Size, strings.HasPrefix(want, string(got)))
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=16m"); err != nil {
		t.Fatal(err)
	}
	export(t, "-n", ns, "-d", dir)
	assertFile(t, file, want)
}

// With --timestamps, lost checkpoints are rebuilt from the stored files where the API proves
// it, and the export goes on without a duplicate.
func TestLostStateRecoveredWithTimestamps(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	log := newLog(t).add(at(0, 0), "same", "same").add(at(1, 0), "x")
	createPod(t, ns, pod{name: "web", containers: []container{{name: "app", log: log}}})
	export(t, "-n", ns, "-d", dir, "--timestamps")
	if err := os.Remove(checkpointFile(dir, ns)); err != nil {
		t.Fatal(err)
	}
	log.add(at(1, 0), "x").add(at(2, 0), "y")
	s := export(t, "-n", ns, "-d", dir, "--timestamps")
	if c := find(t, s, ns, "web", "app"); c.Lines != 2 {
		t.Fatalf("after recovery: %+v", c)
	}
	ts := func(sec int) string { return at(sec, 0).Format(criLayout) + " " }
	assertFile(t, filepath.Join(dir, ns, "web", "app.log"),
		lines(ts(0)+"same", ts(0)+"same", ts(1)+"x", ts(1)+"x", ts(2)+"y"))
}
