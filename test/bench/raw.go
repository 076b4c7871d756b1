package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/pager"
)

// rawMain is the floor: the log requests an export sends (timestamps on, every container of the
// listed pods, the same concurrency), straight through client-go, bodies counted and discarded.
// It runs as its own process so that its time, CPU and memory are measured like the others'.
func rawMain(args []string) error {
	fs := flag.NewFlagSet("raw", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, "log requests at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := cf.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	type target struct{ pod, container string }
	var targets []target
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Pods(cf.namespace).List(ctx, opts)
	})
	p.PageSize = 500
	err = p.EachListItem(ctx, metav1.ListOptions{LabelSelector: cf.selector}, func(obj runtime.Object) error {
		pod := obj.(*corev1.Pod)
		for _, c := range pod.Spec.Containers {
			targets = append(targets, target{pod.Name, c.Name})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	lines := make([]int64, len(targets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cf.concurrency)
	for i, t := range targets {
		g.Go(func() error {
			rc, err := client.CoreV1().Pods(cf.namespace).GetLogs(t.pod, &corev1.PodLogOptions{Container: t.container, Timestamps: true}).Stream(gctx)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", t.pod, t.container, err)
			}
			defer rc.Close()
			_, err = io.Copy(lineCounter{&lines[i]}, rc)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var total int64
	for _, n := range lines {
		total += n
	}
	_, err = fmt.Fprintln(os.Stdout, total)
	return err
}

type lineCounter struct{ n *int64 }

func (c lineCounter) Write(p []byte) (int, error) {
	*c.n += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// clientFlags are the flags every client-go contender of the bench takes: which cluster, which
// pods, how many containers at once.
type clientFlags struct {
	kubeconfig, namespace, selector string
	concurrency                     int
}

func (f *clientFlags) register(fs *flag.FlagSet, concurrencyHelp string) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file")
	fs.StringVar(&f.namespace, "namespace", "", "namespace")
	fs.StringVar(&f.selector, "selector", "", "label selector")
	fs.IntVar(&f.concurrency, "concurrency", 10, concurrencyHelp)
}

// client is a clientset without client-side rate limiting, as the export runs.
func (f *clientFlags) client() (kubernetes.Interface, error) {
	config, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		return nil, err
	}
	config.QPS = -1
	return kubernetes.NewForConfig(config)
}
