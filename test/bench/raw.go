package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
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
//
// With -store DIR it is the storage floor instead: each body also goes as it comes into a file
// of its own, DIR/namespace/pod/container.log, and all of them are made durable at the end. That
// is what storing the logs durably costs by itself, with none of an export's work (no merge, no
// checkpoints, no order between the syncs for a crash to respect): the figure that tells how
// much of an export's time and CPU above the floor is the file system's.
func rawMain(args []string) error {
	fs := flag.NewFlagSet("raw", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, "log requests at once")
	store := fs.String("store", "", "also store each body in DIR/namespace/pod/container.log, made durable at the end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := cf.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var targets []rawTarget
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Pods(cf.namespace).List(ctx, opts)
	})
	p.PageSize = 500
	err = p.EachListItem(ctx, metav1.ListOptions{LabelSelector: cf.selector}, func(obj runtime.Object) error {
		pod := obj.(*corev1.Pod)
		for _, c := range pod.Spec.Containers {
			targets = append(targets, rawTarget{pod.Name, c.Name})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	if *store != "" {
		if err := os.MkdirAll(*store, 0o700); err != nil {
			return err
		}
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
			if *store == "" {
				return drain(rc, &lines[i], nil)
			}
			return storeBody(filepath.Join(*store, cf.namespace, t.pod, t.container+".log"), rc, &lines[i])
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if *store != "" {
		if err := syncStore(*store); err != nil {
			return fmt.Errorf("syncing %s: %w", *store, err)
		}
	}
	var total int64
	for _, n := range lines {
		total += n
	}
	_, err = fmt.Fprintln(os.Stdout, total)
	return err
}

// storeBody copies a log body into a new file at name, counting its lines. The file is synced
// with all the others at the end (syncStore).
func storeBody(name string, body io.Reader, lines *int64) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return errors.Join(drain(body, lines, f), f.Close())
}

// bodyBuffers are the floors' buffers, one per body being read, kept from one body to the next
// as the export keeps its own: a buffer allocated per body cost the storage floor about 560 MiB of
// fresh memory on (b)'s 2,000 logs, which put its CPU at 1.8x the raw floor's (1.2x without).
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// drain reads body to its end, counting its lines, and writes it to w (when not nil) in pieces
// of up to 256 KiB, as an export writes (a body arrives a few KiB a read).
func drain(body io.Reader, lines *int64, w io.Writer) error {
	bp := bodyBuffers.Get().(*[]byte)
	defer bodyBuffers.Put(bp)
	buf, n := *bp, 0
	for {
		m, err := body.Read(buf[n:])
		*lines += int64(bytes.Count(buf[n:n+m], []byte{'\n'}))
		n += m
		if w != nil && n > 0 && (n == len(buf) || err != nil) {
			if m, werr := w.Write(buf[:n]); werr != nil {
				return werr
			} else if m < n {
				return io.ErrShortWrite
			}
		}
		if w == nil || n == len(buf) || err != nil {
			n = 0
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// syncStore makes every stored file and directory durable at once, with one syncfs of the file
// system: the cheapest way there is, for the process (the kernel's flusher threads write most of
// the data back, on CPU time no contender is charged). An export cannot wait that long: each
// checkpoint must be durable after the bytes it covers, round after round.
func syncStore(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = unix.Syncfs(int(f.Fd()))
	return errors.Join(err, f.Close())
}

// rawTarget is a container whose log the floor requests.
type rawTarget struct{ pod, container string }

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
	// http1: read over HTTP/1.1 (a connection per request at once), as a one-shot logexport does.
	http1 bool
}

func (f *clientFlags) register(fs *flag.FlagSet, concurrencyHelp string) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file")
	fs.StringVar(&f.namespace, "namespace", "", "namespace")
	fs.StringVar(&f.selector, "selector", "", "label selector")
	fs.IntVar(&f.concurrency, "concurrency", 10, concurrencyHelp)
	fs.BoolVar(&f.http1, "http1", false, "read over HTTP/1.1 rather than client-go's HTTP/2")
}

// client is a clientset without client-side rate limiting, as the export runs.
func (f *clientFlags) client() (kubernetes.Interface, error) {
	config, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		return nil, err
	}
	config.QPS = -1
	if f.http1 {
		config.NextProtos = []string{"http/1.1"}
	}
	return kubernetes.NewForConfig(config)
}
