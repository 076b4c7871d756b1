// Package e2e runs the built plugin, as `kubectl logexport`, against a real kube-apiserver and etcd
// with pods on a kwok node whose logs kwok serves from CRI files the tests write.
//
// The cluster comes from hack/cluster.sh (built and cached by hack/tools.sh), or from
// E2E_KUBECONFIG when set. E2E_KEEP_CLUSTER=1 leaves the started cluster running for the next run.
// Tests of the bucket export get an S3 server (SeaweedFS's `weed mini`, also built by hack/tools.sh)
// from s3(t): started on first use, stopped when the tests end.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	repoRoot   string
	binDir     string
	kubeconfig string
	client     kubernetes.Interface
	dyn        dynamic.Interface
)

const clusterName = "e2e"

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		return 1, err
	}
	tmp, err := os.MkdirTemp("", "logexport-e2e-bin-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)
	defer stopS3()
	binDir = tmp
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "kubectl-logexport"), "./cmd/kubectl-logexport")
	build.Dir, build.Stdout, build.Stderr = repoRoot, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 1, fmt.Errorf("building the plugin: %w", err)
	}
	kubeconfig = os.Getenv("E2E_KUBECONFIG")
	if kubeconfig == "" {
		up := exec.Command(filepath.Join(repoRoot, "hack", "cluster.sh"), "up", clusterName)
		up.Stderr = os.Stderr
		out, err := up.Output()
		if err != nil {
			return 1, fmt.Errorf("starting the local cluster: %w", err)
		}
		kubeconfig = strings.TrimSpace(string(out))
		if os.Getenv("E2E_KEEP_CLUSTER") == "" {
			defer func() {
				down := exec.Command(filepath.Join(repoRoot, "hack", "cluster.sh"), "down", clusterName)
				down.Stdout, down.Stderr = os.Stderr, os.Stderr
				_ = down.Run()
			}()
		}
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return 1, err
	}
	config.QPS, config.Burst = 100, 200
	if client, err = kubernetes.NewForConfig(config); err != nil {
		return 1, err
	}
	if dyn, err = dynamic.NewForConfig(config); err != nil {
		return 1, err
	}
	return m.Run(), nil
}
