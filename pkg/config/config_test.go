package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
)

const header = "apiVersion: logexport/v1alpha1\nkind: Config\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		// want is the whole error: the file, the field path, what is wrong.
		want string
	}{
		{"bad pattern names its index", header + "selections:\n- namespace: default\n  pods: [redis]\n- namespace: shop\n  pods: [\"(\"]\n",
			"config.yaml: selections[1].pods[0]: Invalid value: \"(\": error parsing regexp: missing closing ): `(`"},
		{"unknown field, with the fields it could be", header + "selections:\n- namespace: default\n  pod: [redis]\n",
			"config.yaml: selections[0].pod: unknown field (known here: namespace, allNamespaces, pods, excludePods, containers, excludeContainers, labelSelector, fieldSelector)"},
		{"unknown top-level field", header + "dir: /data\nselections:\n- namespace: default\n",
			"config.yaml: dir: unknown field (known here: kind, apiVersion, selections)"},
		{"repeated field", header + "selections:\n- namespace: default\n  namespace: shop\n",
			"config.yaml: not valid YAML: yaml: unmarshal errors: line 5: key \"namespace\" already set in map"},
		{"no version", "kind: Config\nselections:\n- namespace: default\n",
			"config.yaml: apiVersion: Required value: must be logexport/v1alpha1"},
		{"another version", "apiVersion: logexport/v1\nkind: Config\nselections:\n- namespace: default\n",
			"config.yaml: apiVersion: Unsupported value: \"logexport/v1\": supported values: \"logexport/v1alpha1\""},
		{"another kind", "apiVersion: logexport/v1alpha1\nkind: Pod\nselections:\n- namespace: default\n",
			"config.yaml: kind: Unsupported value: \"Pod\": supported values: \"Config\""},
		{"no selections", header,
			"config.yaml: selections: Required value: at least one selection"},
		{"empty file", "",
			"config.yaml: apiVersion: Required value: must be logexport/v1alpha1; kind: Required value: must be Config; selections: Required value: at least one selection"},
		{"a list where a mapping belongs", "- a\n- b\n",
			"config.yaml: must be a mapping with apiVersion, kind and selections, not array"},
		{"a string where a list belongs", header + "selections:\n- namespace: default\n  pods: redis\n",
			"config.yaml: selections[0].pods: must be a list of strings, not string"},
		{"the seed's map form", header + "selections:\n  default: [redis]\n",
			"config.yaml: selections: must be a list of mappings, not object"},
		{"bad namespace", header + "selections:\n- namespace: Shop_1\n",
			"config.yaml: selections[0].namespace: Invalid value: \"Shop_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"},
		{"namespace and all namespaces", header + "selections:\n- namespace: shop\n  allNamespaces: true\n",
			"config.yaml: selections[0].namespace: Forbidden: may not be set with allNamespaces: true"},
		{"bad label selector", header + "selections:\n- namespace: shop\n  labelSelector: 'app in (a'\n",
			"config.yaml: selections[0].labelSelector: Invalid value: \"app in (a\": "},
		{"bad field selector", header + "selections:\n- namespace: shop\n  fieldSelector: 'spec.nodeName'\n",
			"config.yaml: selections[0].fieldSelector: Invalid value: \"spec.nodeName\": invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"},
		{"every error, on one line", header + "selections:\n- excludeContainers: [\"[\"]\n  containers: [\"*\"]\n",
			"config.yaml: selections[0].containers[0]: Invalid value: \"*\": error parsing regexp: missing argument to repetition operator: `*`; selections[0].excludeContainers[0]: Invalid value: \"[\": error parsing regexp: missing closing ]: `[`"},
		{"not YAML", header + "selections: [\n",
			"config.yaml: not valid YAML: yaml: line 3: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			got := err.Error()
			// A selector parser's own wording may change with apimachinery; the path and value
			// are ours.
			if strings.HasSuffix(tt.want, ": ") {
				if !strings.HasPrefix(got, tt.want) {
					t.Fatalf("got  %q\nwant %q...", got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseAndSelections(t *testing.T) {
	tests := []struct {
		name, in string
		want     []podselect.Scope
	}{
		{"the issue's form", header + `selections:
- namespace: default
  pods: [redis, lighthouse]
- namespace: shop
  pods: [cart]
  excludePods: [cart-canary]
`, []podselect.Scope{{Namespace: "default"}, {Namespace: "shop"}}},
		{"no namespace: the one the flags would use", header + "selections:\n- pods: [redis]\n",
			[]podselect.Scope{{Namespace: "current"}}},
		{"all namespaces, selectors", header + `selections:
- allNamespaces: true
  labelSelector: app in (cart, web)
  fieldSelector: spec.nodeName=kwok-node
`, []podselect.Scope{{AllNamespaces: true, LabelSelector: "app in (cart, web)", FieldSelector: "spec.nodeName=kwok-node"}}},
		{"JSON is YAML too", `{"apiVersion":"logexport/v1alpha1","kind":"Config","selections":[{"namespace":"ops"}]}`,
			[]podselect.Scope{{Namespace: "ops"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("config.yaml", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			sels, err := c.PodSelections("current")
			if err != nil {
				t.Fatal(err)
			}
			if len(sels) != len(tt.want) {
				t.Fatalf("got %d selections, want %d", len(sels), len(tt.want))
			}
			for i, s := range sels {
				if s.Scope != tt.want[i] {
					t.Errorf("selection %d: got %+v, want %+v", i, s.Scope, tt.want[i])
				}
			}
		})
	}
}

// The patterns select as the flags' do.
func TestSelectionsMatch(t *testing.T) {
	c, err := Parse("config.yaml", []byte(header+`selections:
- namespace: shop
  pods: [cart]
  excludePods: [cart-canary]
  containers: [app, init]
  excludeContainers: ["^init-db$"]
`))
	if err != nil {
		t.Fatal(err)
	}
	sels, err := c.PodSelections("default")
	if err != nil {
		t.Fatal(err)
	}
	s := sels[0].Selector
	for name, want := range map[string]bool{"cart-0": true, "shopping-cart": true, "cart-canary-1": false, "web": false} {
		if s.MatchPod(name) != want {
			t.Errorf("pod %s: got %v", name, !want)
		}
	}
	for name, want := range map[string]bool{"app": true, "init-cache": true, "init-db": false, "sidecar": false} {
		if s.MatchContainer(name) != want {
			t.Errorf("container %s: got %v", name, !want)
		}
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.yaml")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "x.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(p, []byte(header+"selections:\n- namespace: a\n  pods: [\"(\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.HasPrefix(err.Error(), p+": selections[0].pods[0]: Invalid value") {
		t.Fatalf("got %v", err)
	}
}
