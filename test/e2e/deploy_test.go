package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const deployNS = "logexport"

func overlay(name string) string { return filepath.Join(repoRoot, "deploy", "overlays", name) }

// applyOverlay applies an overlay for real, its CronJobs suspended, and removes it, waiting until
// its namespace is gone, when the test ends. Suspended, because the test is of the objects: a Job
// that the schedule started during the test put a pod into the namespace the test exports.
func applyOverlay(t *testing.T, name string) {
	t.Helper()
	items := renderedOverlay(t, name)
	for _, obj := range items {
		if spec, ok := obj["spec"].(map[string]any); ok && obj["kind"] == "CronJob" {
			spec["suspend"] = true
		}
	}
	list, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		t.Fatal(err)
	}
	kubectl(t, string(list), "apply", "--server-side", "-f", "-")
	t.Cleanup(func() {
		c := exec.Command("kubectl", "--kubeconfig", kubeconfig, "delete", "--wait=true", "--timeout=60s", "--ignore-not-found", "-k", overlay(name))
		_ = c.Run()
	})
}

// renderedOverlay is the objects of an overlay as kustomize renders it.
func renderedOverlay(t *testing.T, name string) []map[string]any {
	t.Helper()
	dec := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(kubectl(t, "", "kustomize", overlay(name))), 4096)
	var objs []map[string]any
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err == io.EOF {
			return objs
		} else if err != nil {
			t.Fatalf("decoding the %s overlay: %v", name, err)
		}
		if obj != nil {
			objs = append(objs, obj)
		}
	}
}

// The manifests apply to a real API server with server-side validation, and the plugin succeeds
// with exactly the RBAC they grant, through a token of their ServiceAccount.
func TestDeployManifests(t *testing.T) {
	applyOverlay(t, "cronjob")
	if got := kubectl(t, "", "get", "cronjobs", "-n", deployNS, "-o", "jsonpath={.items[*].spec.suspend}"); got != "true" {
		t.Fatalf("the applied CronJob's spec.suspend is %q, want true (a Job it started would be exported below)", got)
	}
	for _, o := range []string{"follow", "namespaced"} {
		kubectl(t, "", "apply", "--server-side", "--dry-run=server", "-k", overlay(o))
	}
	// The workloads ask for what the deploy promises.
	rendered := kubectl(t, "", "kustomize", overlay("follow"))
	for _, want := range []string{"runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false", "- ALL", "type: Recreate", "replicas: 1", "--follow"} {
		if !strings.Contains(rendered, want) {
			t.Errorf("follow overlay lacks %q", want)
		}
	}
	if r := kubectl(t, "", "kustomize", overlay("cronjob")); !strings.Contains(r, "concurrencyPolicy: Forbid") {
		t.Errorf("cronjob overlay lacks concurrencyPolicy: Forbid")
	}

	ns := newNamespace(t)
	run := "run-" + randID()
	createPod(t, ns, pod{name: "web", labels: map[string]string{"e2e": run}, containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "hello")}}})
	kc := tokenKubeconfig(t, deployNS, "kubectl-logexport", "")
	dir := t.TempDir()
	// The CronJob's own arguments and the configuration its ConfigMap mounts (every namespace),
	// narrowed to this test's pod.
	cron := renderedCronJob(t, "cronjob")
	res := logexportEnv(t, []string{"KUBECONFIG=" + kc}, append(cron.argsWith(t, dir), "-l", "e2e="+run, "-o", "json")...)
	if res.code != 0 {
		t.Fatalf("export with the deploy RBAC: exit %d\n%s", res.code, res.stderr)
	}
	sameList(t, "exported", exported(decode(t, res.stdout)), []string{ns + "/web/app"})
	assertFile(t, filepath.Join(dir, ns, "web", "app.log"), lines("hello"))

	t.Run("namespaced", func(t *testing.T) { testNamespacedInCluster(t) })
}

// tokenKubeconfig writes a kubeconfig that authenticates as a ServiceAccount with a fresh token.
func tokenKubeconfig(t *testing.T, ns, sa, contextNS string) string {
	t.Helper()
	tok, err := client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"local": {Server: admin.Host, CertificateAuthority: admin.CAFile, CertificateAuthorityData: admin.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{sa: {Token: tok.Status.Token}},
		Contexts:       map[string]*clientcmdapi.Context{sa: {Cluster: "local", AuthInfo: sa, Namespace: contextNS}},
		CurrentContext: sa,
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// testNamespacedInCluster: in the cluster there is no kubeconfig: the plugin uses the ServiceAccount files and the
// KUBERNETES_SERVICE_* variables, and exports the namespace it runs in when none is given. The
// files are put in place inside a private mount namespace, so the host is not touched.
func testNamespacedInCluster(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	// Replaces the cluster-wide overlay's CronJob arguments; the Role is all it may use here.
	kubectl(t, "", "apply", "--server-side", "-k", overlay("namespaced"))
	kubectl(t, "", "delete", "clusterrolebinding", "kubectl-logexport")
	createPod(t, deployNS, pod{name: "self", containers: []container{{name: "app", log: newLog(t).add(at(0, 0), "in-cluster")}}})
	t.Cleanup(func() {
		_ = client.CoreV1().Pods(deployNS).Delete(context.Background(), "self", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	})

	admin, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	host, port, ok := strings.Cut(strings.TrimPrefix(admin.Host, "https://"), ":")
	if !ok {
		t.Fatalf("API server address %q", admin.Host)
	}
	ca := admin.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(admin.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := client.CoreV1().ServiceAccounts(deployNS).CreateToken(context.Background(), "kubectl-logexport",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secrets := t.TempDir()
	for name, data := range map[string][]byte{"token": []byte(tok.Status.Token), "ca.crt": ca, "namespace": []byte(deployNS)} {
		if err := os.WriteFile(filepath.Join(secrets, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir, home := t.TempDir(), t.TempDir()
	// The namespaced CronJob's arguments and configuration: its selection names no namespace, so
	// it exports the one it runs in.
	args := renderedCronJob(t, "namespaced").argsWith(t, dir)
	sa := "/run/secrets/kubernetes.io/serviceaccount"
	script := `mount -t tmpfs tmpfs /run && mkdir -p ` + sa + ` && cp "$SECRETS"/* ` + sa + `/ && exec "$PLUGIN" "$@" -o json`
	c := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh"}, args...)...)
	c.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + home, "SECRETS=" + secrets,
		"PLUGIN=" + filepath.Join(binDir, "kubectl-logexport"),
		"KUBERNETES_SERVICE_HOST=" + host, "KUBERNETES_SERVICE_PORT=" + port,
	}
	out, err := c.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		if strings.Contains(stderr, "unshare failed") || strings.Contains(stderr, "Operation not permitted") {
			t.Skipf("cannot make a mount namespace here: %s", stderr)
		}
		t.Fatalf("in-cluster run: %v\n%s", err, stderr)
	}
	s := decode(t, string(out))
	sameList(t, "exported", exported(s), []string{deployNS + "/self/app"})
	assertFile(t, filepath.Join(dir, deployNS, "self", "app.log"), lines("in-cluster"))
}

// The follow overlay serves metrics and probes on a named port, the probes and the scrape
// annotation point at it, and its arguments pass the plugin's own validation.
func TestFollowOverlayObservability(t *testing.T) {
	rendered := kubectl(t, "", "kustomize", overlay("follow"))
	var dep *appsv1.Deployment
	dec := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(rendered), 4096)
	for {
		var d appsv1.Deployment
		if err := dec.Decode(&d); err != nil {
			if err == io.EOF {
				break
			}
			t.Fatalf("decoding the follow overlay: %v", err)
		}
		if d.Kind == "Deployment" {
			dep = &d
		}
	}
	if dep == nil || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the follow overlay has no Deployment with one container:\n%s", rendered)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	// Go's soft memory limit sits below the container's, where it can act before the OOM killer.
	var soft string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			soft = e.Value
		}
	}
	mib, err := strconv.ParseInt(strings.TrimSuffix(soft, "MiB"), 10, 64)
	if limit := c.Resources.Limits.Memory(); err != nil || !strings.HasSuffix(soft, "MiB") || limit.IsZero() || mib<<20 >= limit.Value() {
		t.Errorf("GOMEMLIMIT %q, want n MiB below the memory limit %v", soft, limit)
	}
	var port int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			port = p.ContainerPort
		}
	}
	if port == 0 {
		t.Fatalf("no container port named metrics: %+v", c.Ports)
	}
	if want := fmt.Sprintf("--metrics-bind-address=:%d", port); !slices.Contains(c.Args, want) {
		t.Errorf("args %v lack %s", c.Args, want)
	}
	for name, probe := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}} {
		if probe.p == nil || probe.p.HTTPGet == nil || probe.p.HTTPGet.Path != probe.path ||
			(probe.p.HTTPGet.Port != intstr.FromString("metrics") && probe.p.HTTPGet.Port != intstr.FromInt32(port)) {
			t.Errorf("%s probe %+v, want GET %s on the metrics port", name, probe.p, probe.path)
		}
	}
	if c.LivenessProbe != nil && c.LivenessProbe.PeriodSeconds*c.LivenessProbe.FailureThreshold < 30 {
		t.Errorf("liveness probe gives up after %ds: a slow scrape or a pause must not restart the follower", c.LivenessProbe.PeriodSeconds*c.LivenessProbe.FailureThreshold)
	}
	want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": fmt.Sprint(port), "prometheus.io/path": "/metrics"}
	for k, v := range want {
		if got := dep.Spec.Template.Annotations[k]; got != v {
			t.Errorf("pod annotation %s = %q, want %q", k, got, v)
		}
	}
	// The arguments as the pod runs them pass the plugin's validation (a dry run writes nothing).
	res := logexport(t, append(slices.Clone(c.Args), "--dry-run")...)
	if res.code != 0 {
		t.Fatalf("the overlay's arguments: exit %d\n%s", res.code, res.stderr)
	}
}
