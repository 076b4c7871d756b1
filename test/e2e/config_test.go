package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// writeConfig writes a configuration file for one test.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// --config: selections across three namespaces (pod patterns, an exclusion, container patterns, a
// label selector, an all-namespaces selection, a container two selections select) exported in one
// run, each container once; the dry run shows the same; flags narrow the file; a second run adds
// only what is new.
func TestConfigSelections(t *testing.T) {
	ns1, ns2, ns3 := newNamespace(t), newNamespace(t), newNamespace(t)
	run := "run-" + randID()
	mk := func(ns, name string, labels map[string]string, cs ...container) {
		if labels == nil {
			labels = map[string]string{}
		}
		labels["e2e"] = run
		createPod(t, ns, pod{name: name, labels: labels, containers: cs})
	}
	one := func(name, text string) container {
		return container{name: name, log: newLog(t).add(at(0, 0), text)}
	}
	redisLog := newLog(t).add(at(0, 0), "redis-1", "redis-2")
	mk(ns1, "redis-0", nil, container{name: "redis", log: redisLog})
	mk(ns1, "lighthouse-a", nil, one("lamp", "lamp-1"))
	mk(ns1, "web-0", map[string]string{"extra": "yes"}, one("app", "web-1"))
	mk(ns1, "other-0", nil, one("app", "other-1"))
	mk(ns2, "cart-0", nil, container{name: "migrate", init: true, log: newLog(t).add(at(0, 0), "migrated")}, one("app", "cart-1"))
	mk(ns2, "cart-canary", nil, one("app", "canary-1"))
	mk(ns2, "shop-ui", nil, one("app", "ui-1"))
	mk(ns3, "db-0", map[string]string{"tier": "db"}, one("main", "db-1"), one("sidecar", "proxy-1"))
	mk(ns3, "cache-0", map[string]string{"tier": "cache"}, one("main", "cache-1"))

	cfg := writeConfig(t, fmt.Sprintf(`apiVersion: logexport/v1alpha1
kind: Config
selections:
- namespace: %[1]s
  pods: [redis, lighthouse]
- namespace: %[2]s
  pods: [cart]
  excludePods: [canary]
  containers: [app]
- namespace: %[3]s
  labelSelector: tier=db
  excludeContainers: [sidecar]
# redis-0 again: exported once
- namespace: %[1]s
  pods: ["^redis-0$"]
- allNamespaces: true
  labelSelector: e2e=%[4]s,extra=yes
`, ns1, ns2, ns3, run))
	want := map[string]string{
		ns1 + "/redis-0/redis":     lines("redis-1", "redis-2"),
		ns1 + "/lighthouse-a/lamp": lines("lamp-1"),
		ns1 + "/web-0/app":         lines("web-1"),
		ns2 + "/cart-0/app":        lines("cart-1"),
		ns3 + "/db-0/main":         lines("db-1"),
	}
	var wantKeys []string
	for k := range want {
		wantKeys = append(wantKeys, k)
	}

	t.Run("dry run", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		res := logexport(t, "--config", cfg, "-d", dir, "--dry-run")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		rows := strings.Split(strings.TrimSpace(res.stdout), "\n")
		var got []string
		for _, row := range rows[1:] {
			f := strings.Fields(row)
			if len(f) != 4 || f[3] != filepath.Join(dir, f[0], f[1], f[2]+".log") {
				t.Fatalf("dry-run row %q", row)
			}
			got = append(got, f[0]+"/"+f[1]+"/"+f[2])
		}
		// Sorted by namespace, then pod, as the export goes.
		for i := 1; i < len(got); i++ {
			a, b := strings.Split(got[i-1], "/"), strings.Split(got[i], "/")
			if a[0] > b[0] || a[0] == b[0] && a[1] > b[1] {
				t.Errorf("dry run rows out of order: %s before %s", got[i-1], got[i])
			}
		}
		sorted := append([]string(nil), got...)
		sort.Strings(sorted)
		sameList(t, "dry run", sorted, wantKeys)
		if len(got) != len(want) {
			t.Fatalf("dry run lists %d rows, want %d:\n%s", len(got), len(want), res.stdout)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("dry run created %s (%v)", dir, err)
		}
	})

	dir := t.TempDir()
	t.Run("export", func(t *testing.T) {
		s := export(t, "--config", cfg, "-d", dir)
		sameList(t, "exported", exported(s), wantKeys)
		for key, content := range want {
			assertFile(t, filepath.Join(dir, filepath.FromSlash(key)+".log"), content)
		}
		// Nothing else was written: one directory per selected pod, one file per container.
		for _, ns := range []string{ns1, ns2, ns3} {
			pods, err := os.ReadDir(filepath.Join(dir, ns))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods {
				files, err := os.ReadDir(filepath.Join(dir, ns, p.Name()))
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					key := ns + "/" + p.Name() + "/" + strings.TrimSuffix(f.Name(), ".log")
					if _, ok := want[key]; !ok {
						t.Errorf("unselected %s was exported", key)
					}
				}
			}
		}
	})

	t.Run("second run adds only what is new", func(t *testing.T) {
		redisLog.add(at(1, 0), "redis-3")
		s := export(t, "--config", cfg, "-d", dir)
		for _, c := range s.Containers {
			wantLines := int64(0)
			if c.Pod == "redis-0" {
				wantLines = 1
			}
			if c.Lines != wantLines {
				t.Errorf("%s/%s/%s: %d lines, want %d", c.Namespace, c.Pod, c.Container, c.Lines, wantLines)
			}
		}
		assertFile(t, filepath.Join(dir, ns1, "redis-0", "redis.log"), lines("redis-1", "redis-2", "redis-3"))
	})

	// Selection flags narrow every selection of the file.
	narrow := []struct {
		name string
		args []string
		want []string
	}{
		{"-n keeps the selections for its namespace", []string{"-n", ns2}, []string{ns2 + "/cart-0/app"}},
		{"-l is joined to each selection's", []string{"-l", "tier=db"}, []string{ns3 + "/db-0/main"}},
		{"patterns must match too", []string{"-p", "-0$", "--exclude-pod", "web"}, []string{ns1 + "/redis-0/redis", ns2 + "/cart-0/app", ns3 + "/db-0/main"}},
		{"-c narrows the containers", []string{"-c", "^(lamp|main)$"}, []string{ns1 + "/lighthouse-a/lamp", ns3 + "/db-0/main"}},
	}
	for _, tt := range narrow {
		t.Run(tt.name, func(t *testing.T) {
			s := export(t, append([]string{"--config", cfg, "-d", t.TempDir()}, tt.args...)...)
			sameList(t, "exported", exported(s), tt.want)
		})
	}
}

// A bad configuration file is refused with one line naming the file, the field and what is
// wrong, before anything is written.
func TestConfigErrors(t *testing.T) {
	const header = "apiVersion: logexport/v1alpha1\nkind: Config\n"
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	tests := []struct {
		name string
		body string
		path string
		args []string
		// want is stderr after "error: PATH: ".
		want string
		// flagErr is stderr when a flag does not go with the file (PATH for the file's).
		flagErr string
	}{
		{name: "bad pattern", body: header + "selections:\n- namespace: default\n  pods: [redis]\n- namespace: shop\n  pods: [\"(\"]\n",
			want: "selections[1].pods[0]: Invalid value: \"(\": error parsing regexp: missing closing ): `(`"},
		{name: "unknown field", body: header + "selections:\n- namespace: default\n  excludePod: [canary]\n",
			want: "selections[0].excludePod: unknown field (known here: namespace, allNamespaces, pods, excludePods, containers, excludeContainers, labelSelector, fieldSelector)"},
		{name: "another version", body: "apiVersion: logexport/v1\nkind: Config\nselections:\n- namespace: default\n",
			want: "apiVersion: Unsupported value: \"logexport/v1\": supported values: \"logexport/v1alpha1\""},
		{name: "bad label selector", body: header + "selections:\n- namespace: default\n  labelSelector: 'app in (a'\n",
			want: "selections[0].labelSelector: Invalid value: \"app in (a\": "},
		{name: "not YAML", body: "selections: [\n", want: "not valid YAML: yaml: line 1: did not find expected node content"},
		{name: "missing file", path: missing, want: "reading the configuration: open " + missing + ": no such file or directory"},
		{name: "-A with --config", body: header + "selections:\n- namespace: default\n", args: []string{"-A"},
			flagErr: "error: --all-namespaces cannot be used with --config: the file's selections say where to look (allNamespaces: true in a selection for every namespace)"},
		{name: "-n without a selection for it", body: header + "selections:\n- namespace: default\n", args: []string{"-n", "shop"},
			flagErr: "error: PATH has no selection for namespace shop: with --config, -n keeps only the selections for its namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = writeConfig(t, tt.body)
			}
			dir := filepath.Join(t.TempDir(), "out")
			res := logexport(t, append([]string{"--config", path, "-d", dir}, tt.args...)...)
			if res.code != 1 || res.stdout != "" {
				t.Fatalf("exit %d, stdout %q", res.code, res.stdout)
			}
			if strings.Count(res.stderr, "\n") != 1 || !strings.HasSuffix(res.stderr, "\n") {
				t.Fatalf("stderr is not one line: %q", res.stderr)
			}
			switch {
			case tt.name == "missing file":
				if res.stderr != "error: "+tt.want+"\n" {
					t.Fatalf("stderr %q, want %q", res.stderr, tt.want)
				}
			case tt.flagErr != "":
				if want := strings.ReplaceAll(tt.flagErr, "PATH", path) + "\n"; res.stderr != want {
					t.Fatalf("stderr %q\nwant   %q", res.stderr, want)
				}
			case strings.HasSuffix(tt.want, ": "):
				if !strings.HasPrefix(res.stderr, "error: "+path+": "+tt.want) {
					t.Fatalf("stderr %q, want %q...", res.stderr, "error: "+path+": "+tt.want)
				}
			default:
				if res.stderr != "error: "+path+": "+tt.want+"\n" {
					t.Fatalf("stderr %q\nwant   %q", res.stderr, "error: "+path+": "+tt.want+"\n")
				}
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("a refused configuration created %s (%v)", dir, err)
			}
		})
	}
}

// Follow mode with a configuration: containers of two namespaces, selected by the file, are
// followed in one run, and a new pod that a selection selects is picked up.
func TestConfigFollow(t *testing.T) {
	ns1, ns2 := newNamespace(t), newNamespace(t)
	la := newLog(t).add(at(0, 0), "a1")
	createPod(t, ns1, pod{name: "redis-0", containers: []container{{name: "redis", log: la}}})
	createPod(t, ns1, pod{name: "web-0", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "w1")}}})
	lb := newLog(t).add(at(0, 0), "b1")
	createPod(t, ns2, pod{name: "cart-0", labels: map[string]string{"tier": "shop"}, containers: []container{{name: "app", log: lb}}})
	cfg := writeConfig(t, fmt.Sprintf(`apiVersion: logexport/v1alpha1
kind: Config
selections:
- namespace: %s
  pods: [redis]
- namespace: %s
  labelSelector: tier=shop
`, ns1, ns2))
	dir := t.TempDir()
	f := startFollow(t, "--config", cfg, "-d", dir)
	fileA := filepath.Join(dir, ns1, "redis-0", "redis.log")
	fileB := filepath.Join(dir, ns2, "cart-0", "app.log")
	waitContent(t, fileA, lines("a1"))
	waitContent(t, fileB, lines("b1"))
	la.add(at(1, 0), "a2")
	lb.add(at(1, 0), "b2")
	waitContent(t, fileA, lines("a1", "a2"))
	waitContent(t, fileB, lines("b1", "b2"))
	lc := newLog(t).add(at(0, 0), "c1")
	createPod(t, ns2, pod{name: "cart-1", labels: map[string]string{"tier": "shop"}, containers: []container{{name: "app", log: lc}}})
	waitContent(t, filepath.Join(dir, ns2, "cart-1", "app.log"), lines("c1"))
	f.stop(syscall.SIGTERM)
	if _, err := os.Stat(filepath.Join(dir, ns1, "web-0")); !os.IsNotExist(err) {
		t.Fatalf("unselected web-0 was followed (%v)", err)
	}
}
