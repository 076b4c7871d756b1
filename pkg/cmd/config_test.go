package cmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
)

// --config with --dry-run: the file's selections, narrowed by the selection flags, listed as the
// export would take them.
func TestConfigDryRun(t *testing.T) {
	// The namespaces exist: a run that selects nothing in a namespace looks it up.
	nsObj := func(name string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	mk := func(ns, name string, labels map[string]string, containers ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		}
		return p
	}
	client := fake.NewClientset(
		mk("default", "redis-0", nil, "redis"), mk("default", "lighthouse", nil, "lamp"), mk("default", "web", nil, "app"),
		mk("shop", "cart-0", map[string]string{"tier": "shop"}, "app", "sidecar"), mk("shop", "cart-canary", nil, "app"),
		mk("ops", "db-0", map[string]string{"tier": "db"}, "main"),
		nsObj("default"), nsObj("shop"), nsObj("ops"), nsObj("kube-system"),
	)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: logexport/v1alpha1
kind: Config
selections:
- namespace: default
  pods: [redis, lighthouse]
- namespace: shop
  pods: [cart]
  excludePods: [canary]
- pods: [redis]
- allNamespaces: true
  labelSelector: tier=db
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		namespace string // -n
		mutate    func(o *Options)
		want      []string // namespace/pod/container, in output order
		wantErr   string
	}{
		{name: "the file", want: []string{"default/lighthouse/lamp", "default/redis-0/redis", "ops/db-0/main", "shop/cart-0/app", "shop/cart-0/sidecar"}},
		{name: "-n keeps its namespace's selections", namespace: "shop", want: []string{"shop/cart-0/app", "shop/cart-0/sidecar"}},
		{name: "-n takes the all-namespaces selection there", namespace: "ops", want: []string{"ops/db-0/main"}},
		{name: "-n is the namespace of a selection that names none", namespace: "kube-system", want: nil},
		{name: "patterns narrow", mutate: func(o *Options) { o.Patterns = []string{"-0$"} }, want: []string{"default/redis-0/redis", "ops/db-0/main", "shop/cart-0/app", "shop/cart-0/sidecar"}},
		{name: "containers narrow", mutate: func(o *Options) { o.ExcludeContainers = []string{"side"} }, want: []string{"default/lighthouse/lamp", "default/redis-0/redis", "ops/db-0/main", "shop/cart-0/app"}},
		{name: "-l joins", mutate: func(o *Options) { o.LabelSelector = "tier" }, want: []string{"ops/db-0/main", "shop/cart-0/app", "shop/cart-0/sidecar"}},
		{name: "-A", mutate: func(o *Options) { o.AllNamespaces = true }, wantErr: "--all-namespaces cannot be used with --config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, _, out, _ := genericiooptions.NewTestIOStreams()
			o := NewOptions(streams)
			o.client = client
			o.ConfigFile, o.DryRun, o.Dir = cfg, true, "out"
			// What Complete finds: the current context's namespace, or -n.
			o.namespace = "default"
			if tt.namespace != "" {
				o.namespace, *o.configFlags.Namespace = tt.namespace, tt.namespace
			}
			if tt.mutate != nil {
				tt.mutate(o)
			}
			err := o.loadConfig()
			if err == nil {
				err = o.Validate()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, row := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n")[1:] {
				f := strings.Fields(row)
				got = append(got, f[0]+"/"+f[1]+"/"+f[2])
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestConfigFileError(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: logexport/v1alpha1\nkind: Config\nselections:\n- pods: [\"(\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	o := NewOptions(streams)
	o.ConfigFile = cfg
	err := o.loadConfig()
	if err == nil || err.Error() != cfg+": selections[0].pods[0]: Invalid value: \"(\": error parsing regexp: missing closing ): `(`" {
		t.Fatalf("got %v", err)
	}
}
