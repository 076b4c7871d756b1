package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// originalMain is the tool kubectl logexport replaces, as a baseline: for every container, read
// the whole stored file, fetch the whole log with timestamps, keep each served line that is not
// already in the set of stored lines (adding it to the set), and rewrite the file. Every run costs
// what is stored plus the whole log, and a line identical to one already held (same timestamp,
// same text) is dropped: repeated lines are lost.
func originalMain(args []string) error {
	fs := flag.NewFlagSet("original", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, "containers at once")
	dir := fs.String("dir", "", "directory to store into: DIR/NAMESPACE/POD/CONTAINER.log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := cf.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	pods, err := client.CoreV1().Pods(cf.namespace).List(ctx, metav1.ListOptions{LabelSelector: cf.selector})
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cf.concurrency)
	for _, pod := range pods.Items {
		for _, c := range pod.Spec.Containers {
			g.Go(func() error {
				path := filepath.Join(*dir, pod.Namespace, pod.Name, c.Name+".log")
				return originalMerge(gctx, client, pod.Namespace, pod.Name, c.Name, path)
			})
		}
	}
	return g.Wait()
}

func originalMerge(ctx context.Context, client kubernetes.Interface, namespace, pod, container, path string) error {
	stored, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	rc, err := client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, Timestamps: true}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("%s/%s/%s: %w", namespace, pod, container, err)
	}
	served, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("%s/%s/%s: %w", namespace, pod, container, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, setMerge(stored, served), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// setMerge is the original tool's merge: the stored lines, then each served line that is not
// among the lines held so far.
func setMerge(stored, served []byte) []byte {
	seen := map[string]struct{}{}
	_ = eachLine(bytes.NewReader(stored), func(line []byte) error {
		seen[string(line)] = struct{}{}
		return nil
	})
	out := bytes.NewBuffer(stored)
	_ = eachLine(bytes.NewReader(served), func(line []byte) error {
		if _, ok := seen[string(line)]; ok {
			return nil
		}
		seen[string(line)] = struct{}{}
		out.Write(line)
		out.WriteByte('\n')
		return nil
	})
	return out.Bytes()
}
