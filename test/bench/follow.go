package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Follow at scale: the containers of workload (f) log all the time, a line every 1/rate seconds
// each, stamped with the wall clock, appended to their CRI files while a follower runs for a fixed
// time. The benchmark reads what the follower stored (or printed) as it grows, and takes the
// lag of a line as the time from its timestamp to the first look that found it stored; looks are
// sampleEvery apart, so the lag is that coarse, and an upper bound.
type followSettings struct {
	duration, sample, warmup time.Duration
	rate                     float64
	limits                   []string // --max-log-requests values to run logexport with ("default": none given)
}

// followResult is one run of a follower.
type followResult struct {
	contender, limit string
	sample
	duration time.Duration
	// appended lines before the stop, and how many of them the follower had stored by its exit.
	appended, storedAtStop int64
	// lags of the lines stored while it ran: all, and those logged after the warm-up.
	lags, steady []time.Duration
	// firstAll is when every container had a line logged during the run stored.
	firstAll time.Duration
	// kwok and kube-apiserver CPU over the run.
	kwokCPU, apiCPU time.Duration
	status          string // the follower's last status line
}

// liveLog is a container's log while the run appends to it, and what the sampler read of the
// follower's copy.
type liveLog struct {
	f     *logFile
	out   *os.File
	base  int64   // the first seq logged during the run
	at    []int64 // unix nanoseconds each seq from base was logged at
	ticks int     // lines logged during the run, not counting repeats
}

// tail reads a growing file line by line.
type tail struct {
	path    string
	file    *os.File
	partial []byte
}

func (t *tail) read(buf []byte, fn func([]byte)) error {
	if t.file == nil {
		f, err := os.Open(t.path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		t.file = f
	}
	for {
		n, err := t.file.Read(buf)
		data := append(t.partial, buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			fn(data[:i])
			data = data[i+1:]
		}
		t.partial = append(t.partial[:0], data...)
		if err == io.EOF || n == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// parseLine finds the container tag and the line number in a generated line, with or without a
// timestamp in front.
func parseLine(line []byte) (tag []byte, seq int64, ok bool) {
	i := bytes.Index(line, []byte(" line "))
	if i < 0 || len(line) < i+6+9 {
		return nil, 0, false
	}
	j := bytes.LastIndexByte(line[:i], ' ') + 1
	for _, d := range line[i+6 : i+15] {
		if d < '0' || d > '9' {
			return nil, 0, false
		}
		seq = seq*10 + int64(d-'0')
	}
	return line[j:i], seq, true
}

// runFollow runs one follower (args, stdout into out) on w for s.duration while the containers
// log, stops it with SIGTERM, and measures it; stored are the files to read its lines from.
func runFollow(ctx context.Context, e env, w *workload, s followSettings, name string, args []string, out string, stored []string) (*followResult, error) {
	res := &followResult{contender: name}
	logs := make([]*liveLog, len(w.files))
	byTag := map[string]int{}
	for i, f := range w.files {
		o, err := os.OpenFile(f.path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		defer o.Close()
		logs[i] = &liveLog{f: f, out: o, base: f.lines}
		byTag[f.tag] = i
	}
	tails := make([]*tail, len(stored))
	for i, p := range stored {
		tails[i] = &tail{path: p}
	}
	defer func() {
		for _, t := range tails {
			if t.file != nil {
				t.file.Close()
			}
		}
	}()
	kwokBefore, apiBefore := clusterCPU(e.kubeconfig)

	stdout, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(out + ".stderr")
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	usage := out + ".rusage"
	cmd := exec.Command(e.rusage, append([]string{usage}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// One goroutine appends and samples, so that the times lines were logged need no lock.
	var stopAt time.Time
	readBuf := make([]byte, 64<<10)
	var lagAt []time.Time // when each of res.lags was logged
	firstSeen := make([]bool, len(logs))
	seen := 0
	var storedBefore int64
	look := func(now time.Time, final bool) error {
		for _, t := range tails {
			err := t.read(readBuf, func(line []byte) {
				tag, seq, ok := parseLine(line)
				i, known := byTag[string(tag)]
				if !ok || !known || seq < logs[i].base || seq-logs[i].base >= int64(len(logs[i].at)) {
					return
				}
				l := logs[i]
				at := time.Unix(0, l.at[seq-l.base])
				if final {
					if at.Before(stopAt) {
						storedBefore++
					}
					return
				}
				if at.Before(stopAt) || stopAt.IsZero() {
					storedBefore++
				}
				res.lags = append(res.lags, now.Sub(at))
				lagAt = append(lagAt, at)
				if !firstSeen[i] {
					firstSeen[i] = true
					if seen++; seen == len(logs) {
						res.firstAll = now.Sub(start)
					}
				}
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	interval := time.Duration(float64(time.Second) / s.rate)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	every := max(1, int(s.sample/interval))
	deadline := time.After(s.duration)
	var buf []byte
	var runErr error
	stopped := false
loop:
	for tick := 0; ; tick++ {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return nil, ctx.Err()
		case runErr = <-exited:
			if !stopped {
				return nil, fmt.Errorf("%s exited before it was stopped: %v (see %s.stderr)", name, runErr, out)
			}
			break loop
		case <-deadline:
			stopAt, stopped = time.Now(), true
			for _, l := range logs {
				res.appended += l.f.lines - l.base
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			deadline = nil
			continue
		case <-ticker.C:
		}
		// Lines go on being logged until the follower has exited, at the rate asked for: a tick
		// that came late (a busy machine) logs what is due.
		due := int(time.Since(start).Seconds()*s.rate) + 1
		for _, l := range logs {
			for l.ticks < due {
				l.ticks++
				seq := l.f.lines
				now := time.Now()
				var msgLen int
				buf, msgLen = entry(buf[:0], l.f.tag, seq, now.UTC())
				n := 1
				if seq%repeatEvery == repeatEvery-1 {
					buf = append(buf, buf...)
					n = 2
				}
				if _, err := l.out.Write(buf); err != nil {
					return nil, err
				}
				l.at = append(l.at, now.UnixNano())
				if n == 2 {
					// The repeat has no number of its own: the next seq is skipped.
					l.at = append(l.at, now.UnixNano())
				}
				l.f.lines += int64(n)
				l.f.payload += int64(n * (msgLen + 1))
			}
		}
		if tick%every == 0 && !stopped {
			if err := look(time.Now(), false); err != nil {
				return nil, err
			}
		}
	}
	res.duration = stopAt.Sub(start)
	// Steady: lines logged once every container had a stream delivering.
	for i, at := range lagAt {
		if res.firstAll > 0 && at.Sub(start) > res.firstAll+s.warmup {
			res.steady = append(res.steady, res.lags[i])
		}
	}
	// What the follower stored by its exit, of what was logged before the stop.
	storedBefore = 0
	for _, t := range tails {
		if t.file != nil {
			t.file.Close()
		}
		*t = tail{path: t.path}
	}
	if err := look(time.Time{}, true); err != nil {
		return nil, err
	}
	res.storedAtStop = storedBefore
	kwokAfter, apiAfter := clusterCPU(e.kubeconfig)
	res.kwokCPU, res.apiCPU = kwokAfter-kwokBefore, apiAfter-apiBefore
	if runErr != nil {
		msg, _ := os.ReadFile(out + ".stderr")
		if len(msg) > 3000 {
			msg = msg[len(msg)-3000:]
		}
		return nil, fmt.Errorf("%s: %v: %s", name, runErr, msg)
	}
	b, err := os.ReadFile(usage)
	if err != nil {
		return nil, err
	}
	var rssKiB, userUs, sysUs int64
	if _, err := fmt.Sscan(string(b), &rssKiB, &userUs, &sysUs); err != nil {
		return nil, fmt.Errorf("reading %s: %w", usage, err)
	}
	res.wall, res.cpu, res.rss = time.Since(start), time.Duration(userUs+sysUs)*time.Microsecond, rssKiB<<10
	if st, err := os.ReadFile(out + ".stderr"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "following ") {
				res.status = l
			}
		}
	}
	return res, nil
}

// clusterCPU is the CPU time kwok and kube-apiserver have used so far, read from /proc with the
// process ids hack/cluster.sh's kwokctl keeps beside the kubeconfig (zero if not found).
func clusterCPU(kubeconfig string) (kwok, apiserver time.Duration) {
	name := strings.TrimSuffix(filepath.Base(kubeconfig), ".kubeconfig")
	pids := filepath.Join(filepath.Dir(kubeconfig), "kwok", "clusters", name, "pids")
	return procCPU(filepath.Join(pids, "kwok-controller.pid")), procCPU(filepath.Join(pids, "kube-apiserver.pid"))
}

func procCPU(pidFile string) time.Duration {
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(pid)), "stat"))
	if err != nil {
		return 0
	}
	// The fields after the command name, which may hold spaces: utime and stime are the 14th and
	// 15th fields, in clock ticks (100 a second on Linux).
	_, rest, _ := bytes.Cut(stat, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// followRep runs every follower once on w, the order rotated by r.
func followRep(ctx context.Context, e env, w *workload, s followSettings, r int, scratchRoot string, run map[string]bool, record func(*followResult)) error {
	var units []func(string) error
	if run[cRaw] {
		units = append(units, func(scratch string) error {
			out := filepath.Join(scratch, "raw.out")
			res, err := runFollow(ctx, e, w, s, cRawFollow, []string{e.self, "rawfollow", "-kubeconfig", e.kubeconfig, "-namespace", w.namespace,
				"-selector", w.selector}, out, []string{out})
			if err != nil {
				return err
			}
			res.limit = "none"
			record(res)
			return nil
		})
	}
	for _, limit := range s.limits {
		if !run[cFull] {
			break
		}
		units = append(units, func(scratch string) error {
			dir := filepath.Join(scratch, "logs")
			base := append(append([]string{}, e.plugin...), "--kubeconfig", e.kubeconfig, "-n", w.namespace, "-l", w.selector, "-d", dir)
			if limit != "default" {
				base = append(base, "--max-log-requests", limit)
			}
			// Up to date before it starts, as a follower that took over from a one-shot run (or
			// from itself) is: its start is a resume, and what is measured is following.
			if err := oneShot(ctx, base, dir+".before.json"); err != nil {
				return err
			}
			res, err := runFollow(ctx, e, w, s, cFollow, append(append([]string{}, base...), "-f", "--summary-interval", "5s"),
				dir+".out", storedFiles(w, dir))
			if err != nil {
				return err
			}
			res.limit = limit
			// What was logged after the stop, and anything the follower missed, comes with the
			// next run; then every line logged must be there once.
			if err := oneShot(ctx, base, dir+".after.json"); err != nil {
				return err
			}
			if err := check(&res.sample, w, true, false, storedFiles(w, dir)...); err != nil {
				return err
			}
			record(res)
			return nil
		})
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

func oneShot(ctx context.Context, args []string, out string) error {
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], "-o", "json")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return os.WriteFile(out, b, 0o644)
}

const (
	cFollow    = "logexport -f"
	cRawFollow = "raw API follow (floor)"
)

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// pct is a percentile in seconds, "-" of no lines.
func pct(sorted []time.Duration, p float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	return secs(percentile(sorted, p))
}

// followTable is workload (f)'s results.
func followTable(w *workload, s followSettings, results []*followResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n(%s) %d pods x %d containers following, each logging %g lines/s (%g lines/s in all), %s per run; lag sampled every %s (an upper bound that coarse); steady: lines logged %s after every container had its first line stored\n\n",
		w.name, w.pods, w.containers, s.rate, s.rate*float64(len(w.files)), s.duration, s.sample, s.warmup)
	fmt.Fprintf(&b, "| follower | --max-log-requests | lag p50 s | lag p99 s | steady p50 s | steady p99 s | max s | every container's line stored after s | logged before stop | stored by exit | CPU s | CPU x raw | peak RSS MiB | kwok CPU s | apiserver CPU s | lines lost/doubled after a one-shot run |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var raw time.Duration
	for _, r := range results {
		if r.contender == cRawFollow {
			raw = r.cpu
		}
	}
	for _, r := range results {
		slices.Sort(r.lags)
		slices.Sort(r.steady)
		first := "never"
		if r.firstAll > 0 {
			first = secs(r.firstAll)
		}
		acc := "-"
		if r.checked {
			acc = fmt.Sprintf("%d/%d", r.lost, r.doubled)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %d | %d | %s | %s | %.0f | %s | %s | %s |\n", r.contender, r.limit,
			pct(r.lags, 0.5), pct(r.lags, 0.99), pct(r.steady, 0.5), pct(r.steady, 0.99), pct(r.lags, 1), first, r.appended, r.storedAtStop, secs(r.cpu), ratio(r.cpu, raw), float64(r.rss)/mib,
			secs(r.kwokCPU), secs(r.apiCPU), acc)
	}
	for _, r := range results {
		if r.status != "" {
			fmt.Fprintf(&b, "\n%s (--max-log-requests %s), last status line: %s\n", r.contender, r.limit, r.status)
		}
	}
	return b.String()
}

// rawFollowMain is the floor of following: a follow=true stream with timestamps for every
// container of the listed pods, all at once, each line written to stdout as it comes, until
// SIGTERM. It asks only for lines from its start on.
func rawFollowMain(args []string) error {
	fs := flag.NewFlagSet("rawfollow", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file")
	namespace := fs.String("namespace", "", "namespace")
	selector := fs.String("selector", "", "label selector")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	config.QPS = -1
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	pods, err := client.CoreV1().Pods(*namespace).List(ctx, metav1.ListOptions{LabelSelector: *selector})
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	since := metav1.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, pod := range pods.Items {
		for _, c := range pod.Spec.Containers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				opts := &corev1.PodLogOptions{Container: c.Name, Timestamps: true, Follow: true, SinceTime: &since}
				rc, err := client.CoreV1().Pods(*namespace).GetLogs(pod.Name, opts).Stream(ctx)
				if err != nil {
					if ctx.Err() == nil {
						fmt.Fprintf(os.Stderr, "%s/%s: %v\n", pod.Name, c.Name, err)
					}
					return
				}
				defer rc.Close()
				br := bufio.NewReaderSize(rc, 4<<10)
				for {
					line, err := br.ReadSlice('\n')
					if len(line) > 0 {
						mu.Lock()
						_, _ = os.Stdout.Write(line)
						mu.Unlock()
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// maxInotifyInstances limits the inotify instances of a user. kwok, as a kubelet does, watches
// each followed log with an inotify instance of its own: past the limit (128 by default) a
// followed stream ends at once with "failed to create fsnotify watcher: too many open files"
// written into it, and (f) measures reconnections instead of a follower.
const maxInotifyInstances = "/proc/sys/fs/inotify/max_user_instances"

// ensureInotify raises the limit to what streams followed at once need, where the bench may (as
// root), and fails with what to do otherwise.
func ensureInotify(streams int) error {
	b, err := os.ReadFile(maxInotifyInstances)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not Linux
	}
	if err != nil {
		return err
	}
	have, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s: %w", maxInotifyInstances, err)
	}
	want := streams + 256 // and what else runs
	if have >= want {
		return nil
	}
	if err := os.WriteFile(maxInotifyInstances, []byte(strconv.Itoa(want)), 0); err != nil {
		return fmt.Errorf("workload f follows %d streams, and kwok takes an inotify instance for each: the limit is %d (%s); raise it with sysctl -w fs.inotify.max_user_instances=%d (%v)",
			streams, have, maxInotifyInstances, want, err)
	}
	fmt.Fprintf(os.Stderr, "bench: raised %s from %d to %d for workload f's streams\n", maxInotifyInstances, have, want)
	return nil
}
