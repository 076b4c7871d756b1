package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sample is one timed run of a contender: wall time, CPU (user+system) and peak RSS of its process.
type sample struct {
	wall, cpu time.Duration
	rss       int64 // bytes
	// lost and doubled count the served lines missing from what the contender stored or
	// printed, and those there once too often; checked says they were counted.
	lost, doubled int64
	checked       bool
	// Of an export: stored is what the destination holds after the run (the directory's files,
	// or the bucket's objects, gzipped), in bytes and files or objects.
	stored, objects int64
	// Of an export into the bucket: the S3 server's CPU during the run, the segments and
	// checkpoints the bucket holds after it, and how long a pull of the bucket into a directory
	// (everything after the full run, what is new after the incremental one) took.
	serverCPU             time.Duration
	segments, checkpoints int64
	pull                  time.Duration
}

// env is what every contender's command line needs.
type env struct {
	kubeconfig  string
	plugin      []string // how to start the plugin
	baseline    []string // how to start the baseline build, if one runs
	self        string   // this program, for the raw floor
	rusage      string   // the helper that measures a command
	concurrency int
	// weed is the S3 server of the bucket contender, nil when it does not run; s3objects the
	// helper that lists its bucket.
	weed      *weedServer
	s3objects string
}

// measure runs a command with stdout into a file and returns its resource use. CPU and peak RSS
// come from the kernel's rusage of exactly that process, reported by the rusage helper.
func measure(ctx context.Context, e env, args []string, stdout string) (sample, error) {
	return measureEnv(ctx, e, nil, args, stdout)
}

// measureEnv is measure with variables added to the command's environment.
func measureEnv(ctx context.Context, e env, extraEnv []string, args []string, stdout string) (sample, error) {
	out, err := os.Create(stdout)
	if err != nil {
		return sample{}, err
	}
	defer out.Close()
	usage := stdout + ".rusage"
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, e.rusage, append([]string{usage}, args...)...)
	cmd.Stdout, cmd.Stderr = out, &stderr
	if extraEnv != nil {
		cmd.Env = append(os.Environ(), extraEnv...)
	}
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return sample{}, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, msg)
	}
	b, err := os.ReadFile(usage)
	if err != nil {
		return sample{}, err
	}
	var rssKiB, userUs, sysUs int64
	if _, err := fmt.Sscan(string(b), &rssKiB, &userUs, &sysUs); err != nil {
		return sample{}, fmt.Errorf("reading %s: %w", usage, err)
	}
	return sample{wall: wall, cpu: time.Duration(userUs+sysUs) * time.Microsecond, rss: rssKiB << 10}, out.Close()
}

const (
	cRaw = "raw API (floor)"
	// The raw floor over HTTP/1.1, as a one-shot logexport reads (client-go, kubectl and stern
	// read over HTTP/2): what reading costs without HTTP/2's flow control and frame hand-offs.
	cRawH1 = "raw API over HTTP/1.1"
	// The storage floor: the raw floor writing each body into a file of its own, all made
	// durable at the end (see rawMain). Not a target's reference: it says what part of an export's cost above the floor
	// is the file system's.
	cStore   = "raw API into synced files"
	cFull    = "logexport, full"
	cIncr    = "logexport, +1% incremental"
	cStern   = "stern --no-follow"
	cKubectl = "kubectl logs"
	cOrig    = "original tool (set of lines), full"
	cOrigInc = "original tool (set of lines), +1% incremental"
	cBucket  = "logexport to a bucket, full"
	cBucketI = "logexport to a bucket, +1% incremental"
	// The baseline is another build of logexport (-baseline REV), run as logexport is: the
	// figures of a change against those of the commit it starts from, in one run.
	cBaseFull = "baseline build, full"
	cBaseIncr = "baseline build, +1% incremental"
)

var contenderNames = []string{cRaw, cRawH1, cStore, cFull, cIncr, cBaseFull, cBaseIncr, cBucket, cBucketI, cStern, cKubectl, cOrig, cOrigInc}

// contenderFlags maps the names -contenders takes to the contenders they stand for.
var contenderFlags = map[string][]string{"raw": {cRaw}, "raw1": {cRawH1}, "store": {cStore}, "logexport": {cFull, cIncr}, "stern": {cStern}, "kubectl": {cKubectl},
	"original": {cOrig, cOrigInc}, "bucket": {cBucket, cBucketI}, "baseline": {cBaseFull, cBaseIncr}}

// storedFiles are where a contender that stores per container (logexport, the original tool)
// keeps the logs of w under dir.
func storedFiles(w *workload, dir string) []string {
	files := make([]string, len(w.files))
	for i, f := range w.files {
		files[i] = filepath.Join(dir, w.namespace, filepath.FromSlash(f.tag)+".log")
	}
	return files
}

// check counts the lines a contender lost or doubled and adds them to its sample.
func check(s *sample, w *workload, grown, stamped bool, files ...string) error {
	lost, doubled, err := accuracy(w, grown, stamped, files...)
	if err != nil {
		return err
	}
	s.lost, s.doubled, s.checked = lost, doubled, true
	return nil
}

func runRaw(ctx context.Context, e env, w *workload, scratch string) (sample, error) {
	return rawRun(ctx, e, w, scratch)
}

func runRawH1(ctx context.Context, e env, w *workload, scratch string) (sample, error) {
	return rawRun(ctx, e, w, scratch, "-http1")
}

// rawRun runs the raw floor with flags and checks the lines it counted.
func rawRun(ctx context.Context, e env, w *workload, scratch string, flags ...string) (sample, error) {
	out := filepath.Join(scratch, "raw.out")
	s, err := measure(ctx, e, append([]string{e.self, "raw", "-kubeconfig", e.kubeconfig, "-namespace", w.namespace,
		"-selector", w.selector, "-concurrency", strconv.Itoa(e.concurrency)}, flags...), out)
	if err != nil {
		return s, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return s, err
	}
	want, _ := w.served()
	if got := strings.TrimSpace(string(b)); got != strconv.FormatInt(want, 10) {
		return s, fmt.Errorf("raw: %s lines, want %d", got, want)
	}
	return s, nil
}

// runStore is the storage floor, into a directory of its own; the files must hold every line
// served, once.
func runStore(ctx context.Context, e env, w *workload, scratch string) (sample, error) {
	dir := filepath.Join(scratch, "store")
	s, err := measure(ctx, e, []string{e.self, "raw", "-kubeconfig", e.kubeconfig, "-namespace", w.namespace,
		"-selector", w.selector, "-concurrency", strconv.Itoa(e.concurrency), "-store", dir}, dir+".out")
	if err != nil {
		return s, err
	}
	return s, check(&s, w, false, true, storedFiles(w, dir)...)
}

// runLogexport exports into dir (empty for a full run, the full run's for an incremental one)
// and checks its JSON summary against what was added to the logs, and the files against what
// was served.
func runLogexport(ctx context.Context, e env, w *workload, dir string, grown bool, wantLines, wantBytes int64) (sample, error) {
	s, err := runExport(ctx, e, w, dir, nil, nil, dir+".json", wantLines, wantBytes)
	if err != nil {
		return s, err
	}
	if s.stored, s.objects, err = dirSize(dir); err != nil {
		return s, err
	}
	return s, check(&s, w, grown, false, storedFiles(w, dir)...)
}

// runBucket exports into the bucket under prefix (new for a full run, the full run's for an
// incremental one), then pulls it into pulled (new or the full run's likewise, so that the
// incremental run's pull fetches only what it added) and checks the pulled files as
// runLogexport checks its directory's.
func runBucket(ctx context.Context, e env, w *workload, prefix, pulled string, grown bool, wantLines, wantBytes int64) (sample, error) {
	dest := "s3://" + e.weed.Bucket + "/" + prefix
	before, err := e.weed.cpu()
	if err != nil {
		return sample{}, err
	}
	// The lease lives with the workload's pods, and goes with their namespace.
	s, err := runExport(ctx, e, w, dest, e.weed.Env(), []string{"--lease-namespace", w.namespace}, pulled+".json", wantLines, wantBytes)
	if err != nil {
		return s, err
	}
	after, err := e.weed.cpu()
	if err != nil {
		return s, err
	}
	s.serverCPU = after - before
	cmd := exec.CommandContext(ctx, e.s3objects, "size", dest)
	cmd.Env, cmd.Stderr = append(os.Environ(), e.weed.Env()...), os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return s, fmt.Errorf("s3objects size %s: %w", dest, err)
	}
	var use struct {
		Objects int64 `json:"objects"`
		Bytes   int64 `json:"bytes"`
		ByDir   map[string]struct {
			Objects int64 `json:"objects"`
		} `json:"by_dir"`
	}
	if err := json.Unmarshal(out, &use); err != nil {
		return s, fmt.Errorf("s3objects size %s: %w", dest, err)
	}
	s.stored, s.objects = use.Bytes, use.Objects
	s.segments, s.checkpoints = use.ByDir["logs"].Objects, use.ByDir["checkpoints"].Objects
	p, err := measureEnv(ctx, e, e.weed.Env(), append(append([]string{}, e.plugin...), "pull", dest, "-d", pulled), pulled+".pull")
	if err != nil {
		return s, err
	}
	s.pull = p.wall
	return s, check(&s, w, grown, false, storedFiles(w, pulled)...)
}

// runExport runs the plugin into dest and checks its JSON summary (written to out) against
// what was added to the logs.
func runExport(ctx context.Context, e env, w *workload, dest string, extraEnv, extraArgs []string, out string, wantLines, wantBytes int64) (sample, error) {
	args := append(append([]string{}, e.plugin...), "--kubeconfig", e.kubeconfig, "-n", w.namespace, "-l", w.selector,
		"-d", dest, "--max-log-requests", strconv.Itoa(e.concurrency), "-o", "json")
	s, err := measureEnv(ctx, e, extraEnv, append(args, extraArgs...), out)
	if err != nil {
		return s, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return s, err
	}
	// The fields of pkg/cmd's Summary that the check needs; importing pkg/cmd would bring
	// cobra and cli-runtime into this binary, which is also the raw floor being measured.
	var sum struct {
		Containers []json.RawMessage `json:"containers"`
		Lines      int64             `json:"lines"`
		Bytes      int64             `json:"bytes"`
		Failed     int               `json:"failed"`
		Gaps       int               `json:"gaps"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		return s, fmt.Errorf("logexport summary: %w", err)
	}
	if len(sum.Containers) != len(w.files) || sum.Lines != wantLines || sum.Bytes != wantBytes || sum.Failed != 0 || sum.Gaps != 0 {
		return s, fmt.Errorf("logexport -d %s: %d containers, %d lines, %d bytes, %d failed, %d gaps; want %d containers, %d lines, %d bytes",
			dest, len(sum.Containers), sum.Lines, sum.Bytes, sum.Failed, sum.Gaps, len(w.files), wantLines, wantBytes)
	}
	return s, nil
}

// dirSize is the bytes and the number of the regular files under dir: the export's logs, their
// checkpoints and its journal.
func dirSize(dir string) (bytes, files int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		bytes += fi.Size()
		files++
		return nil
	})
	return bytes, files, err
}

// runOutput runs a contender that prints the logs and checks that all of them arrived.
func runOutput(ctx context.Context, e env, name string, args []string, w *workload, scratch string) (sample, error) {
	out := filepath.Join(scratch, "out.log")
	s, err := measure(ctx, e, args, out)
	if err != nil {
		return s, err
	}
	f, err := os.Open(out)
	if err != nil {
		return s, err
	}
	defer f.Close()
	var lines int64
	n, err := io.Copy(lineCounter{&lines}, f)
	if err != nil {
		return s, err
	}
	wantLines, wantBytes := w.served()
	if lines != wantLines || n != wantBytes {
		return s, fmt.Errorf("%s: %d lines, %d bytes; want %d lines, %d bytes", name, lines, n, wantLines, wantBytes)
	}
	return s, check(&s, w, false, false, out)
}

// runOriginal runs the original tool (originalMain) into dir; it stores each line with its
// timestamp.
func runOriginal(ctx context.Context, e env, w *workload, dir string, grown bool) (sample, error) {
	s, err := measure(ctx, e, []string{e.self, "original", "-kubeconfig", e.kubeconfig, "-namespace", w.namespace,
		"-selector", w.selector, "-concurrency", strconv.Itoa(e.concurrency), "-dir", dir}, dir+".out")
	if err != nil {
		return s, err
	}
	return s, check(&s, w, grown, true, storedFiles(w, dir)...)
}

func runStern(ctx context.Context, e env, w *workload, scratch string) (sample, error) {
	return runOutput(ctx, e, "stern", []string{"stern", "--kubeconfig", e.kubeconfig, "-n", w.namespace, "-l", w.selector,
		"--no-follow", "--max-log-requests", strconv.Itoa(e.concurrency), "-o", "raw", "--color", "never", "."}, w, scratch)
}

// kubectl logs reads the pods one after the other without --follow; --max-log-requests only
// bounds followed streams. --tail=-1 because a selector defaults to the last 10 lines.
func runKubectl(ctx context.Context, e env, w *workload, scratch string) (sample, error) {
	return runOutput(ctx, e, "kubectl logs", []string{"kubectl", "--kubeconfig", e.kubeconfig, "logs", "-n", w.namespace, "-l", w.selector,
		"--all-containers", "--tail=-1", "--max-log-requests", strconv.Itoa(e.concurrency)}, w, scratch)
}

// runRep runs every contender once on w, in an order rotated by r so that no contender always runs
// first (cold caches) or last. The incremental run follows the full one it builds on.
// Contenders for which skip says so are left out of this repetition. Each contender writes into a
// new directory under scratchRoot, which the caller removes only after the last repetition: on
// ext4 without a journal (this project's CI machine), creating a file within about 30 s of
// deleting thousands costs a millisecond of kernel time (the allocator scans recently deleted
// inodes), so removing one run's files would charge the next contender for the cleanup.
func runRep(ctx context.Context, e env, w *workload, r int, scratchRoot string, skip func(string) bool, record func(string, sample)) error {
	// A contender's run either checks out and is recorded, or ends the benchmark.
	one := func(name string, run func(context.Context, env, *workload, string) (sample, error)) func(string) error {
		return func(scratch string) error {
			if skip(name) {
				return nil
			}
			s, err := run(ctx, e, w, scratch)
			if err != nil {
				return err
			}
			record(name, s)
			return nil
		}
	}
	// A full export into a new directory, then the incremental run on the workload grown by 1%.
	exportPair := func(full, incr string) func(string) error {
		return func(scratch string) error {
			if skip(full) {
				return nil
			}
			e := e
			if full == cBaseFull {
				e.plugin = e.baseline
			}
			dir := filepath.Join(scratch, "logs")
			lines, bytes := w.served()
			s, err := runLogexport(ctx, e, w, dir, false, lines, bytes)
			if err != nil {
				return err
			}
			record(full, s)
			if w.terminated > 0 {
				// (d) measures a directory in its steady state: the finished containers read to
				// their end by one run and confirmed by the next (store.Checkpoint.Confirmed),
				// which this run is, unmeasured.
				if _, err := runLogexport(ctx, e, w, dir, false, 0, 0); err != nil {
					return err
				}
			}
			if err := w.grow(0.01); err != nil {
				return err
			}
			defer func() { _ = w.shrink() }()
			lines, bytes = w.grown()
			s, err = runLogexport(ctx, e, w, dir, true, lines, bytes)
			if err != nil {
				return err
			}
			record(incr, s)
			return nil
		}
	}
	units := []func(string) error{
		one(cRaw, runRaw),
		one(cRawH1, runRawH1),
		one(cStore, runStore),
		exportPair(cFull, cIncr),
		exportPair(cBaseFull, cBaseIncr),
		func(scratch string) error {
			if skip(cBucket) || e.weed == nil {
				return nil
			}
			// A prefix of its own in the one bucket: scratch is new for every repetition.
			prefix := w.name + "-" + filepath.Base(scratch)
			pulled := filepath.Join(scratch, "pulled")
			lines, bytes := w.served()
			s, err := runBucket(ctx, e, w, prefix, pulled, false, lines, bytes)
			if err != nil {
				return err
			}
			record(cBucket, s)
			if w.terminated > 0 {
				// As for the directory: the confirming run, unmeasured.
				if _, err := runBucket(ctx, e, w, prefix, pulled, false, 0, 0); err != nil {
					return err
				}
			}
			if err := w.grow(0.01); err != nil {
				return err
			}
			defer func() { _ = w.shrink() }()
			lines, bytes = w.grown()
			s, err = runBucket(ctx, e, w, prefix, pulled, true, lines, bytes)
			if err != nil {
				return err
			}
			record(cBucketI, s)
			return nil
		},
		func(scratch string) error {
			if skip(cOrig) {
				return nil
			}
			dir := filepath.Join(scratch, "logs")
			s, err := runOriginal(ctx, e, w, dir, false)
			if err != nil {
				return err
			}
			record(cOrig, s)
			if err := w.grow(0.01); err != nil {
				return err
			}
			defer func() { _ = w.shrink() }()
			s, err = runOriginal(ctx, e, w, dir, true)
			if err != nil {
				return err
			}
			record(cOrigInc, s)
			return nil
		},
		one(cStern, runStern),
		one(cKubectl, runKubectl),
	}
	for i := range units {
		scratch, err := os.MkdirTemp(scratchRoot, "")
		if err != nil {
			return err
		}
		if err := units[(i+r)%len(units)](scratch); err != nil {
			return err
		}
	}
	return nil
}
