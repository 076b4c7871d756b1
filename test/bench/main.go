// Command bench measures `kubectl logexport` side by side with the raw log API, stern and
// `kubectl logs` on a local cluster (hack/cluster.sh), with pods on a kwok node whose generated CRI
// logs kwok serves. Every contender reads the same logs through the same API server, alternating
// within one run; each figure is also given as a ratio against the raw floor of the same run, since
// kwok serves logs far slower than a kubelet would.
//
//	go run ./test/bench [-workloads a,b,c128,c256,d,e,f] [-reps 5] [-scale 1] [-out FILE]
//
// With -contenders ...,bucket it also exports into a bucket on a SeaweedFS `weed mini` it starts
// (built by hack/tools.sh), and compares that with the export into a directory.
//
// `make bench` builds it like the plugin's release (static, stripped) and runs it. BENCH_SCALE (or -scale) multiplies the pods of (a), (b), (d), (e) and (f) and the
// log size of (c) for a bigger machine.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "raw":
		err = rawMain(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "original":
		err = originalMain(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "rawfollow":
		err = rawFollowMain(os.Args[2:])
	default:
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = benchMain(ctx, os.Args[1:])
		stop()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

const mib = 1 << 20

// workloads are the shapes: many pods of middling logs, very many small logs (listing and
// per-request overhead), one huge log (memory), the latter at two sizes to show that memory does
// not grow with the log; very many small logs most of which can no longer change (d); and (e) five
// times (b)'s pods, to show that memory does not grow with the number of pods either.
// exportOnly: the workloads that measure the export (and into a bucket) against the floor.
var exportOnly = []string{"raw", "raw1", "store", "logexport", "bucket"}

func workloads(scale float64) map[string]*workload {
	n := func(v int) int { return max(1, int(float64(v)*scale)) }
	return map[string]*workload{
		"a": {name: "a", pods: n(50), containers: 2, logBytes: mib},
		"b": {name: "b", pods: n(2000), containers: 1, logBytes: 20 << 10},
		// (d): (b)'s pods, of which most have finished (Jobs, CronJobs) and are stored to their
		// end; an incremental run asks only for the 100 that run.
		"d":    {name: "d", pods: n(2000), containers: 1, logBytes: 20 << 10, terminated: n(2000) - n(100), only: exportOnly},
		"e":    {name: "e", pods: n(10000), containers: 1, logBytes: 20 << 10, only: exportOnly},
		"c128": {name: "c128", pods: 1, containers: 1, logBytes: int64(float64(128*mib) * scale)},
		"c256": {name: "c256", pods: 1, containers: 1, logBytes: int64(float64(256*mib) * scale)},
		// Following: many containers that keep logging (see follow.go); not in the default set.
		"f": {name: "f", pods: n(1000), containers: 1, logBytes: 2 << 10, follow: true},
	}
}

func benchMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	names := fs.String("workloads", "a,b,c128,c256,d,e,f", "workloads to run, comma-separated")
	reps := fs.Int("reps", 5, "runs of each contender per workload (the median is reported)")
	only := fs.String("contenders", "raw,raw1,store,logexport,stern,kubectl,original", "contenders to run, comma-separated (raw1: the raw floor over HTTP/1.1, as a one-shot export reads; store: the floor storing each log in a synced file; logexport, bucket and original are the full and the incremental run; bucket exports into a bucket on a SeaweedFS weed mini the bench starts)")
	defScale := 1.0
	if v := os.Getenv("BENCH_SCALE"); v != "" {
		var err error
		if defScale, err = strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("BENCH_SCALE: %w", err)
		}
	}
	scale := fs.Float64("scale", defScale, "multiplies the pods of (a), (b), (d), (e) and (f) and the log size of (c)")
	concurrency := fs.Int("concurrency", 10, "log requests at once, for every contender that has the setting")
	fs.DurationVar(&lineInterval, "line-interval", lineInterval, "time between two log lines; an incremental run re-reads the last second it stored")
	slow := fs.Float64("slow", 10, "run stern and kubectl logs only once when they take longer than this many times the raw floor (0: always repeat)")
	out := fs.String("out", "bin/bench-results.md", "where to write the results table")
	kubeconfig := fs.String("kubeconfig", "", "use this cluster instead of starting one with hack/cluster.sh")
	keep := fs.Bool("keep-cluster", false, "leave the started cluster running")
	var follow followSettings
	fs.DurationVar(&follow.duration, "follow-duration", time.Minute, "(f): how long each follower runs before it is stopped with SIGTERM")
	fs.Float64Var(&follow.rate, "follow-rate", 10, "(f): lines a second each container logs")
	fs.DurationVar(&follow.sample, "follow-sample", 200*time.Millisecond, "(f): how often the stored lines are looked at (the lag's resolution)")
	fs.DurationVar(&follow.warmup, "follow-warmup", 5*time.Second, "(f): the steady lag counts lines logged this long after every container's first line was stored")
	limits := fs.String("follow-max-log-requests", "default", "(f): run logexport -f with each of these --max-log-requests (default: the flag not given)")
	baseline := fs.String("baseline", "", "a git revision of this repository to build and run as the baseline contender (with -contenders ...,baseline): a change's figures against its start, in one run")
	hold := fs.Bool("hold", false, "after creating each workload, wait for a line on stdin before running the contenders (to profile one by hand)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	follow.limits = strings.Split(*limits, ",")
	all := workloads(*scale)
	var selected []*workload
	for _, n := range strings.Split(*names, ",") {
		w, ok := all[strings.TrimSpace(n)]
		if !ok {
			return fmt.Errorf("unknown workload %q (a, b, c128, c256, d, e, f)", n)
		}
		selected = append(selected, w)
		if w.follow {
			if err := ensureInotify(w.pods * w.containers); err != nil {
				return err
			}
		}
	}
	run := map[string]bool{}
	for _, c := range strings.Split(*only, ",") {
		names, ok := contenderFlags[strings.TrimSpace(c)]
		if !ok {
			return fmt.Errorf("unknown contender %q (raw, store, logexport, baseline, bucket, stern, kubectl, original)", c)
		}
		for _, n := range names {
			run[n] = true
		}
	}
	if *reps < 1 {
		return fmt.Errorf("-reps must be at least 1")
	}

	root, err := repoRoot()
	if err != nil {
		return err
	}
	tools := []string{"cluster", "stern"}
	if run[cBucket] {
		tools = append(tools, "weed")
	}
	toolsBin, err := output(root, "hack/tools.sh", tools...)
	if err != nil {
		return err
	}
	binDir, err := os.MkdirTemp("", "logexport-bench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)
	plugin := filepath.Join(binDir, "kubectl-logexport")
	// Built as .goreleaser.yaml builds the released binary: static and stripped, which halves its
	// resident memory.
	if err := os.Setenv("CGO_ENABLED", "0"); err != nil {
		return err
	}
	if _, err := output(root, "go", "build", "-ldflags", "-s -w", "-o", plugin, "./cmd/kubectl-logexport"); err != nil {
		return err
	}
	var base string
	if run[cBaseFull] {
		if *baseline == "" {
			return fmt.Errorf("the baseline contender needs -baseline REV")
		}
		if base, err = buildBaseline(root, *baseline, binDir); err != nil {
			return err
		}
	}
	rusage := filepath.Join(binDir, "rusage")
	if _, err := output(root, "go", "build", "-ldflags", "-s -w", "-o", rusage, "./test/bench/rusage"); err != nil {
		return err
	}
	s3objects := filepath.Join(binDir, "s3objects")
	if _, err := output(root, "go", "build", "-ldflags", "-s -w", "-o", s3objects, "./test/bench/s3objects"); err != nil {
		return err
	}
	if err := os.Setenv("PATH", binDir+string(os.PathListSeparator)+toolsBin+string(os.PathListSeparator)+os.Getenv("PATH")); err != nil {
		return err
	}
	if *kubeconfig == "" {
		if *kubeconfig, err = output(root, "hack/cluster.sh", "up", "bench"); err != nil {
			return err
		}
		if !*keep {
			defer func() { _, _ = output(root, "hack/cluster.sh", "down", "bench") }()
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	config.QPS, config.Burst = -1, 0
	// Pods are listed by the thousand while a workload is created: protobuf costs the bench's
	// process, which shares the cores, less than JSON. The dynamic client (kwok's Logs) stays JSON.
	typed := rest.CopyConfig(config)
	typed.ContentType = runtime.ContentTypeProtobuf
	typed.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	client, err := kubernetes.NewForConfig(typed)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return err
	}
	logDir, err := os.MkdirTemp("", "logexport-bench-logs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(logDir)

	e := env{kubeconfig: *kubeconfig, plugin: []string{plugin}, baseline: []string{base}, self: self, rusage: rusage, concurrency: *concurrency, s3objects: s3objects}
	if run[cBucket] {
		if e.weed, err = startWeed(toolsBin, s3objects); err != nil {
			return fmt.Errorf("starting the S3 server: %w", err)
		}
		defer e.weed.Stop()
	}
	rep := &report{machine: describeMachine(client), reps: *reps, concurrency: *concurrency, scale: *scale}
	if run[cBaseFull] {
		rep.baseline = *baseline
	}
	for _, w := range selected {
		start := time.Now()
		fmt.Fprintf(os.Stderr, "bench: workload %s: %d pods x %d containers x %s, creating\n", w.name, w.pods, w.containers, size(w.logBytes))
		if err := w.create(ctx, client, dyn, logDir); err != nil {
			return err
		}
		created := time.Since(start)
		fmt.Fprintf(os.Stderr, "bench: workload %s: created in %s (%s)\n", w.name, created.Round(time.Second), w.took)
		if *hold {
			fmt.Fprintf(os.Stderr, "bench: workload %s is in namespace %s (--kubeconfig %s); press Enter to run the contenders\n", w.name, w.namespace, *kubeconfig)
			if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
				return fmt.Errorf("waiting for Enter: %w", err)
			}
		}
		res := &result{w: w, samples: map[string][]sample{}, follow: follow, created: created}
		scratch, err := os.MkdirTemp("", "logexport-bench-"+w.name+"-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(scratch) // when a run fails; removed below otherwise
		for r := 0; r < *reps && w.follow; r++ {
			fmt.Fprintf(os.Stderr, "bench: workload %s: run %d/%d\n", w.name, r+1, *reps)
			err := followRep(ctx, e, w, follow, r, scratch, run, func(fr *followResult) { res.follows = append(res.follows, fr) })
			if err != nil {
				return fmt.Errorf("workload %s: %w", w.name, err)
			}
		}
		for r := 0; r < *reps && !w.follow; r++ {
			fmt.Fprintf(os.Stderr, "bench: workload %s: run %d/%d\n", w.name, r+1, *reps)
			skip := res.skip(*slow)
			err := runRep(ctx, e, w, r, scratch, func(c string) bool { return !run[c] || !w.runs(c) || skip(c) }, func(c string, s sample) { res.samples[c] = append(res.samples[c], s) })
			if err != nil {
				return fmt.Errorf("workload %s: %w", w.name, err)
			}
		}
		w.delete(ctx, client)
		_ = os.RemoveAll(scratch)
		_ = os.RemoveAll(filepath.Join(logDir, w.name))
		rep.results = append(rep.results, res)
		fmt.Fprintf(os.Stderr, "bench: workload %s done in %s\n%s\n", w.name, time.Since(start).Round(time.Second), res.table())
	}
	text := rep.String()
	fmt.Print(text)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: results written to %s\n", *out)
	return nil
}

// repoRoot is the module root, so that `go run ./test/bench` works from it and from test/bench.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// output runs a helper from the repository root, its messages going to our stderr.
func output(root string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stderr = root, os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// buildBaseline builds the plugin as it is at rev (a git revision of the repository at root)
// into binDir, as the plugin is built, and returns its path.
func buildBaseline(root, rev, binDir string) (string, error) {
	src, err := os.MkdirTemp("", "logexport-bench-baseline-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	archive := exec.Command("git", "-C", root, "archive", "--format=tar", rev)
	extract := exec.Command("tar", "-x", "-C", src)
	if extract.Stdin, err = archive.StdoutPipe(); err != nil {
		return "", err
	}
	var stderr strings.Builder
	archive.Stderr = &stderr
	if err := archive.Start(); err != nil {
		return "", err
	}
	if out, err := extract.CombinedOutput(); err != nil {
		_ = archive.Wait()
		return "", fmt.Errorf("extracting %s: %v: %s", rev, err, out)
	}
	if err := archive.Wait(); err != nil {
		return "", fmt.Errorf("git archive %s: %v: %s", rev, err, strings.TrimSpace(stderr.String()))
	}
	bin := filepath.Join(binDir, "kubectl-logexport-baseline")
	if _, err := output(src, "go", "build", "-ldflags", "-s -w", "-o", bin, "./cmd/kubectl-logexport"); err != nil {
		return "", fmt.Errorf("building the baseline %s: %w", rev, err)
	}
	return bin, nil
}
