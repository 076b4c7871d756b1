package e2e

import (
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/logexport/kubectl-logexport/pkg/shard"
)

// The sharded overlay: a StatefulSet whose replicas each take their shard from their ordinal,
// --total-shards equal to its replicas, a bucket destination with credentials from a Secret, no
// volume, and a Role that lets the ServiceAccount hold leases. It applies to a real API server,
// and the plugin holds a shard's lease with exactly the RBAC it grants.
func TestShardedOverlay(t *testing.T) {
	rendered := kubectl(t, "", "kustomize", overlay("sharded"))
	var sts *appsv1.StatefulSet
	var leaseRole *rbacv1.Role
	dec := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(rendered), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if err == io.EOF {
				break
			}
			t.Fatalf("decoding the sharded overlay: %v", err)
		}
		switch obj["kind"] {
		case "StatefulSet":
			sts = &appsv1.StatefulSet{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, sts); err != nil {
				t.Fatal(err)
			}
		case "Role":
			r := &rbacv1.Role{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, r); err != nil {
				t.Fatal(err)
			}
			for _, rule := range r.Rules {
				if slices.Contains(rule.APIGroups, "coordination.k8s.io") && slices.Contains(rule.Resources, "leases") {
					leaseRole = r
					for _, verb := range []string{"get", "create", "update", "list", "watch"} {
						if !slices.Contains(rule.Verbs, verb) {
							t.Errorf("the lease Role lacks %s: %v", verb, rule.Verbs)
						}
					}
				}
			}
		case "PersistentVolumeClaim":
			t.Errorf("the sharded overlay writes to a bucket, yet has a PersistentVolumeClaim")
		}
	}
	if sts == nil || len(sts.Spec.Template.Spec.Containers) != 1 || sts.Spec.Replicas == nil {
		t.Fatalf("the sharded overlay has no StatefulSet with one container and replicas:\n%s", rendered)
	}
	if leaseRole == nil || leaseRole.Namespace != deployNS {
		t.Fatalf("the sharded overlay has no Role for leases in %s:\n%s", deployNS, rendered)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q, want Parallel", sts.Spec.PodManagementPolicy)
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if want := "--total-shards=" + itoa(int(*sts.Spec.Replicas)); !slices.Contains(c.Args, want) {
		t.Errorf("args %v lack %s (replicas %d)", c.Args, want, *sts.Spec.Replicas)
	}
	if !slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--dir=s3://") }) || !slices.Contains(c.Args, "--follow") {
		t.Errorf("args %v do not follow into a bucket", c.Args)
	}
	var fromLabel bool
	for _, e := range c.Env {
		if e.Name == "LOGEXPORT_SHARD_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.labels['apps.kubernetes.io/pod-index']" {
			fromLabel = true
		}
	}
	if !fromLabel {
		t.Errorf("no LOGEXPORT_SHARD_INDEX from the pod-index label: %+v", c.Env)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name == "" {
		t.Errorf("the bucket's credentials do not come from a Secret: %+v", c.EnvFrom)
	}
	for _, want := range []string{"runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false", "- ALL"} {
		if !strings.Contains(rendered, want) {
			t.Errorf("sharded overlay lacks %q", want)
		}
	}
	// The arguments as replica 1 runs them pass the plugin's validation (a dry run writes
	// nothing and takes no lease).
	if res := logexportEnv(t, []string{"LOGEXPORT_SHARD_INDEX=1"}, append(slices.Clone(c.Args), "--dry-run")...); res.code != 0 {
		t.Fatalf("the overlay's arguments: exit %d\n%s", res.code, res.stderr)
	}

	applyOverlay(t, "sharded")
	ns := newNamespace(t)
	run := "run-" + randID()
	createPod(t, ns, pod{name: "web", labels: map[string]string{"e2e": run}, containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "hello")}}})
	kc := tokenKubeconfig(t, deployNS, "kubectl-logexport", deployNS)
	dir := t.TempDir()
	idx := shard.Of(ns, "web", 2)
	res := logexportEnv(t, []string{"KUBECONFIG=" + kc}, "-A", "-l", "e2e="+run, "-d", dir, "--total-shards", "2", "--shard-index", itoa(idx), "-o", "json")
	if res.code != 0 {
		t.Fatalf("a sharded export with the overlay's RBAC: exit %d\n%s", res.code, res.stderr)
	}
	sameList(t, "exported", exported(decode(t, res.stdout)), []string{ns + "/web/app"})
	assertFile(t, filepath.Join(dir, ns, "web", "app.log"), lines("hello"))
	// The lease is in the ServiceAccount's namespace, released.
	abs, _ := filepath.Abs(dir)
	out := kubectl(t, "", "-n", deployNS, "get", "lease", shard.LeaseName(abs, idx), "-o", "jsonpath={.metadata.labels.logexport\\.io/total-shards}")
	if out != "2" {
		t.Fatalf("the lease records total %q, want 2", out)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
