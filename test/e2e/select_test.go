package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/logexport/kubectl-logexport/pkg/cmd"
)

func exported(s cmd.Summary) []string {
	var out []string
	for _, c := range s.Containers {
		out = append(out, c.Namespace+"/"+c.Pod+"/"+c.Container)
	}
	sort.Strings(out)
	return out
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// Pod selection: patterns (positional and -p), --exclude-pod, -l, -n, -A and the current
// context's namespace; containers: init and regular ones, -c and --exclude-container.
func TestSelection(t *testing.T) {
	ns1, ns2 := newNamespace(t), newNamespace(t)
	run := "run-" + randID()
	mk := func(ns, name, app string, cs ...container) {
		createPod(t, ns, pod{name: name, labels: map[string]string{"e2e": run, "app": app}, containers: cs})
	}
	one := func(name string) []container {
		return []container{{name: name, log: newLog(t).add(at(0, 0), name)}}
	}
	mk(ns1, "redis-0", "redis", one("redis")...)
	mk(ns1, "redis-1", "redis", one("redis")...)
	mk(ns1, "web-0", "web",
		container{name: "init-db", init: true, log: newLog(t).add(at(0, 0), "migrated")},
		container{name: "app", log: newLog(t).add(at(1, 0), "serving")},
		container{name: "sidecar", log: newLog(t).add(at(1, 0), "proxying")})
	mk(ns2, "redis-0", "redis", one("redis")...)
	mk(ns2, "lighthouse-a", "lighthouse", one("lamp")...)

	tests := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"positional pattern", []string{"-n", ns1, "redis"}, nil,
			[]string{ns1 + "/redis-0/redis", ns1 + "/redis-1/redis"}},
		{"-p and exclude", []string{"-n", ns1, "-p", "^redis", "--exclude-pod", "-1$"}, nil,
			[]string{ns1 + "/redis-0/redis"}},
		{"two patterns", []string{"-n", ns2, "redis", "lighthouse"}, nil,
			[]string{ns2 + "/redis-0/redis", ns2 + "/lighthouse-a/lamp"}},
		{"label selector", []string{"-n", ns1, "-l", "app=redis"}, nil,
			[]string{ns1 + "/redis-0/redis", ns1 + "/redis-1/redis"}},
		{"all namespaces", []string{"-A", "-l", "e2e=" + run, "-p", "redis-0"}, nil,
			[]string{ns1 + "/redis-0/redis", ns2 + "/redis-0/redis"}},
		{"field selector", []string{"-A", "-l", "e2e=" + run, "--field-selector", "metadata.namespace=" + ns2}, nil,
			[]string{ns2 + "/redis-0/redis", ns2 + "/lighthouse-a/lamp"}},
		{"init and regular containers", []string{"-n", ns1, "web"}, nil,
			[]string{ns1 + "/web-0/init-db", ns1 + "/web-0/app", ns1 + "/web-0/sidecar"}},
		{"container patterns", []string{"-n", ns1, "web", "-c", "app|init", "--exclude-container", "^init"}, nil,
			[]string{ns1 + "/web-0/app"}},
		{"current context namespace", []string{"-l", "e2e=" + run}, []string{"KUBECONFIG=" + kubeconfigWithNamespace(t, ns2)},
			[]string{ns2 + "/redis-0/redis", ns2 + "/lighthouse-a/lamp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			res := logexportEnv(t, tt.env, append(tt.args, "-d", dir, "-o", "json")...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			s := decode(t, res.stdout)
			sameList(t, "exported", exported(s), tt.want)
			for _, c := range s.Containers {
				if c.Lines != 1 {
					t.Errorf("%s/%s/%s: %d lines, want 1", c.Namespace, c.Pod, c.Container, c.Lines)
				}
			}
		})
	}
	t.Run("init container content", func(t *testing.T) {
		dir := t.TempDir()
		export(t, "-n", ns1, "web", "-d", dir)
		assertFile(t, filepath.Join(dir, ns1, "web-0", "init-db.log"), lines("migrated"))
		assertFile(t, filepath.Join(dir, ns1, "web-0", "app.log"), lines("serving"))
		assertFile(t, filepath.Join(dir, ns1, "web-0", "sidecar.log"), lines("proxying"))
	})
	t.Run("dry run", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		res := logexport(t, "-n", ns1, "redis", "-d", dir, "--dry-run")
		want := "NAMESPACE" // header, then one row per container with its file
		if res.code != 0 || !strings.HasPrefix(res.stdout, want) ||
			!strings.Contains(res.stdout, filepath.Join(dir, ns1, "redis-1", "redis.log")) {
			t.Fatalf("dry run: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("dry run created %s (%v)", dir, err)
		}
	})
}

// kubeconfigWithNamespace writes a copy of the test kubeconfig whose current context has namespace ns.
func kubeconfigWithNamespace(t *testing.T, ns string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Contexts[cfg.CurrentContext].Namespace = ns
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Pods are listed in chunks (--chunk-size, as for kubectl get): a run asks the API server for
// them page by page, following its continue tokens, and exports the pods of every page; 0 lists
// them in one request. The list requests are read from the client's request log (-v=6).
func TestChunkedList(t *testing.T) {
	ns := newNamespace(t)
	var want []string
	for i := range 5 {
		name := fmt.Sprintf("p%d", i)
		createPod(t, ns, pod{name: name, containers: []container{{name: "c", log: newLog(t).add(at(i, 0), name)}}})
		want = append(want, ns+"/"+name+"/c")
	}
	listRE := regexp.MustCompile(`/api/v1/namespaces/` + ns + `/pods(?:\?([^"\s]*))?"`)
	tests := []struct {
		name string
		args []string
		// lists are the queries of the pod list requests, in order; continue tokens are
		// replaced by "T".
		lists []string
	}{
		{"chunks of 2", []string{"--chunk-size", "2"}, []string{"limit=2", "continue=T&limit=2", "continue=T&limit=2"}},
		{"one chunk", []string{"--chunk-size", "5"}, []string{"limit=5"}},
		{"default", nil, []string{"limit=500"}},
		{"not chunked", []string{"--chunk-size", "0"}, []string{""}},
		// The retention's list of what is there is chunked too.
		{"retention", []string{"--chunk-size", "3", "--retain", "720h"}, []string{"limit=3", "continue=T&limit=3", "limit=3", "continue=T&limit=3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			res := logexport(t, append([]string{"-n", ns, "-d", dir, "-o", "json", "-v", "6"}, tt.args...)...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, clip(res.stderr))
			}
			s := decode(t, res.stdout)
			sameList(t, "exported", exported(s), want)
			for _, c := range s.Containers {
				assertFile(t, filepath.Join(dir, ns, c.Pod, "c.log"), lines(c.Pod))
			}
			var lists []string
			for _, m := range listRE.FindAllStringSubmatch(res.stderr, -1) {
				q, err := url.ParseQuery(m[1])
				if err != nil {
					t.Fatal(err)
				}
				if q.Has("continue") {
					q.Set("continue", "T")
				}
				lists = append(lists, q.Encode())
			}
			if strings.Join(lists, " ") != strings.Join(tt.lists, " ") {
				t.Errorf("pod list requests %q, want %q", lists, tt.lists)
			}
		})
	}
}
