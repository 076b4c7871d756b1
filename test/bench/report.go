package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

type result struct {
	w       *workload
	samples map[string][]sample
	follows []*followResult
	follow  followSettings
	// created is how long creating the workload took (pods running, every log served).
	created time.Duration
}

// stats of one contender on one workload: medians, and the extremes of wall time.
type stats struct {
	wall, minWall, maxWall, cpu time.Duration
	rss                         int64 // the highest peak of all runs
}

func summarize(ss []sample) stats {
	if len(ss) == 0 {
		return stats{}
	}
	walls := make([]time.Duration, len(ss))
	cpus := make([]time.Duration, len(ss))
	var st stats
	for i, s := range ss {
		walls[i], cpus[i] = s.wall, s.cpu
		st.rss = max(st.rss, s.rss)
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	st.wall, st.minWall, st.maxWall, st.cpu = median(walls), walls[0], walls[len(walls)-1], median(cpus)
	return st
}

// accuracyCell is the worst of the runs' lost and doubled lines; "-" for a contender that only
// counts what it read (the raw floor, checked by its count).
func accuracyCell(ss []sample) string {
	var lost, doubled int64
	checked := false
	for _, s := range ss {
		lost, doubled, checked = max(lost, s.lost), max(doubled, s.doubled), checked || s.checked
	}
	if !checked {
		return "-"
	}
	return fmt.Sprintf("%d/%d", lost, doubled)
}

func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func (r *result) stat(c string) stats { return summarize(r.samples[c]) }

// skip leaves out the other tools once they proved slower than factor times the floor: on many
// small logs, kubectl logs and stern read one log after the other, and five runs of them would
// take an hour to repeat what the first one showed. The table says how many runs each figure has.
func (r *result) skip(factor float64) func(string) bool {
	return func(c string) bool {
		if factor <= 0 || (c != cStern && c != cKubectl) || len(r.samples[c]) == 0 || len(r.samples[cRaw]) == 0 {
			return false
		}
		return r.stat(c).wall.Seconds() > factor*r.stat(cRaw).wall.Seconds()
	}
}

type report struct {
	machine     string
	reps        int
	concurrency int
	scale       float64
	// baseline is the revision the baseline build is of, if it ran.
	baseline string
	results  []*result
}

func (r *report) result(name string) *result {
	for _, res := range r.results {
		if res.w.name == name {
			return res
		}
	}
	return nil
}

func size(n int64) string {
	switch {
	case n >= mib:
		return fmt.Sprintf("%.4g MiB", float64(n)/mib)
	case n >= 1<<10:
		return fmt.Sprintf("%.4g KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

func ratio(a, b time.Duration) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a.Seconds()/b.Seconds())
}

func (r *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s\n\n", r.machine)
	fmt.Fprintf(&b, "%d runs of each contender per workload, alternating; median wall time (min-max), median CPU (user+system), highest peak RSS. "+
		"Concurrency %d log requests for every contender that has the setting; scale %g; log lines %s apart.\n", r.reps, r.concurrency, r.scale, lineInterval)
	if r.baseline != "" {
		fmt.Fprintf(&b, "The baseline build is of %s.\n", r.baseline)
	}
	for _, res := range r.results {
		b.WriteString(res.table())
	}
	if t := r.targets(); t != "" {
		b.WriteString("\nTargets\n\n| target | measured | met |\n|---|---|---|\n")
		b.WriteString(t)
	}
	return b.String()
}

// table is one workload's results.
func (res *result) table() string {
	if res.w.follow {
		return followTable(res.w, res.follow, res.follows)
	}
	var b strings.Builder
	w := res.w
	lines, printed := w.served()
	finished := ""
	if w.terminated > 0 {
		finished = fmt.Sprintf(" (%d pods finished, the incremental run's lines from the other %d)", w.terminated, w.pods-w.terminated)
	}
	fmt.Fprintf(&b, "\n(%s) %d pods x %d containers x %s of CRI log%s: %d lines, %.1f MB printed",
		w.name, w.pods, w.containers, size(w.logBytes), finished, lines, float64(printed)/1e6)
	if res.created > 0 {
		fmt.Fprintf(&b, "; created in %s", res.created.Round(time.Second))
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "| contender | runs | wall s, median (min-max) | wall x raw | MB/s | CPU s | CPU x raw | peak RSS MiB | lines lost/doubled |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|\n")
	raw := res.stat(cRaw)
	for _, c := range contenderNames {
		st := res.stat(c)
		if st.wall == 0 {
			continue
		}
		bytes := printed
		if c == cIncr || c == cBaseIncr || c == cOrigInc || c == cBucketI {
			_, bytes = w.grown()
		}
		fmt.Fprintf(&b, "| %s | %d | %s (%s-%s) | %s | %.1f | %s | %s | %.0f | %s |\n", c, len(res.samples[c]), secs(st.wall), secs(st.minWall), secs(st.maxWall),
			ratio(st.wall, raw.wall), float64(bytes)/1e6/st.wall.Seconds(), secs(st.cpu), ratio(st.cpu, raw.cpu), float64(st.rss)/mib, accuracyCell(res.samples[c]))
	}
	b.WriteString(res.bucketTable())
	return b.String()
}

// bucketTable compares the export into the bucket with the export into a directory of the same
// run: the plugin's time, CPU and memory as ratios, what the S3 server spent, and what each
// destination holds afterwards. Empty unless both ran.
func (res *result) bucketTable() string {
	pairs := [][2]string{{cBucket, cFull}, {cBucketI, cIncr}}
	if len(res.samples[cBucket]) == 0 || len(res.samples[cFull]) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n| bucket against directory | full | +1% incremental |\n|---|---|---|\n")
	row := func(name string, cell func(bucket, dir []sample) string) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, p := range pairs {
			bs, ds := res.samples[p[0]], res.samples[p[1]]
			if len(bs) == 0 || len(ds) == 0 {
				b.WriteString(" - |")
				continue
			}
			fmt.Fprintf(&b, " %s |", cell(bs, ds))
		}
		b.WriteString("\n")
	}
	row("wall, x directory", func(bs, ds []sample) string { return ratio(summarize(bs).wall, summarize(ds).wall) })
	row("plugin CPU, x directory", func(bs, ds []sample) string { return ratio(summarize(bs).cpu, summarize(ds).cpu) })
	row("plugin peak RSS, x directory", func(bs, ds []sample) string {
		return fmt.Sprintf("%.2fx (%.0f MiB)", float64(summarize(bs).rss)/float64(summarize(ds).rss), float64(summarize(bs).rss)/mib)
	})
	row("S3 server (weed) CPU s, x plugin CPU", func(bs, _ []sample) string {
		server := medianOf(bs, func(s sample) time.Duration { return s.serverCPU })
		return fmt.Sprintf("%s (%s)", secs(server), ratio(server, summarize(bs).cpu))
	})
	row("stored MB: bucket / directory", func(bs, ds []sample) string {
		st, sd := medianInt(bs, func(s sample) int64 { return s.stored }), medianInt(ds, func(s sample) int64 { return s.stored })
		return fmt.Sprintf("%.1f / %.1f (%.2fx)", float64(st)/1e6, float64(sd)/1e6, float64(st)/float64(sd))
	})
	row("objects / files", func(bs, ds []sample) string {
		last := bs[len(bs)-1]
		return fmt.Sprintf("%d (%d segments, %d checkpoints) / %d", last.objects, last.segments, last.checkpoints, ds[len(ds)-1].objects)
	})
	row("pull into a directory, s (after the full run: everything; after the incremental: what is new)", func(bs, _ []sample) string {
		return secs(medianOf(bs, func(s sample) time.Duration { return s.pull }))
	})
	return b.String()
}

func medianOf(ss []sample, f func(sample) time.Duration) time.Duration {
	v := make([]time.Duration, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	return median(v)
}

func medianInt(ss []sample, f func(sample) int64) int64 {
	return int64(medianOf(ss, func(s sample) time.Duration { return time.Duration(f(s)) }))
}

// targets checks the goals against what this run measured; a benchmark reports, it does
// not fail.
func (r *report) targets() string {
	var b strings.Builder
	line := func(target, measured string, met bool) {
		yes := "yes"
		if !met {
			yes = "NO"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", target, measured, yes)
	}
	for _, name := range []string{"a", "b", "e"} {
		res := r.result(name)
		if res == nil {
			continue
		}
		raw, full, incr := res.stat(cRaw), res.stat(cFull), res.stat(cIncr)
		stern, kubectl := res.stat(cStern), res.stat(cKubectl)
		if full.wall == 0 {
			continue // -contenders left the export out
		}
		if raw.wall != 0 {
			line(fmt.Sprintf("(%s) full export within 1.2x of the raw floor", name), ratio(full.wall, raw.wall), full.wall.Seconds() <= 1.2*raw.wall.Seconds())
		}
		if stern.wall != 0 && kubectl.wall != 0 {
			line(fmt.Sprintf("(%s) full export faster than stern and kubectl logs", name),
				fmt.Sprintf("%s of stern, %s of kubectl logs", ratio(full.wall, stern.wall), ratio(full.wall, kubectl.wall)),
				full.wall < stern.wall && full.wall < kubectl.wall)
		}
		if name == "a" && raw.cpu != 0 {
			line("(a) CPU of the full export within 1.1x of the floor's", cpuRatios(res), full.cpu.Seconds() <= 1.1*raw.cpu.Seconds())
		}
		switch {
		case name == "a":
			line("(a) +1% incremental run at most 10% of the full export", ratio(incr.wall, full.wall), incr.wall.Seconds() <= 0.1*full.wall.Seconds())
		case raw.wall != 0:
			// Every container still needs its request; what must not matter is what is stored.
			line(fmt.Sprintf("(%s) +1%% incremental run bound by listing and requests: within 1.2x of the raw floor", name), ratio(incr.wall, raw.wall),
				incr.wall.Seconds() <= 1.2*raw.wall.Seconds())
		}
	}
	if res := r.result("d"); res != nil {
		raw, incr := res.stat(cRaw), res.stat(cIncr)
		if raw.wall != 0 && incr.wall != 0 {
			// What can no longer change is not asked for: the run costs the list and the running
			// containers' requests.
			line(fmt.Sprintf("(d) incremental run, %d of %d containers terminated and stored: within 0.1x of the raw floor", res.w.terminated*res.w.containers, res.w.pods*res.w.containers),
				ratio(incr.wall, raw.wall), incr.wall.Seconds() <= 0.1*raw.wall.Seconds())
		}
	}
	few, many := r.result("b"), r.result("e")
	if many != nil && many.stat(cFull).wall != 0 {
		rss := max(many.stat(cFull).rss, many.stat(cIncr).rss)
		line(fmt.Sprintf("(e) peak RSS of an export of %d pods under 100 MiB", many.w.pods), fmt.Sprintf("%.0f MiB", float64(rss)/mib), rss < 100*mib)
		if few != nil && few.stat(cFull).wall != 0 {
			s := max(few.stat(cFull).rss, few.stat(cIncr).rss)
			line(fmt.Sprintf("(e) peak RSS flat from %d to %d pods (at most 10%% more)", few.w.pods, many.w.pods),
				fmt.Sprintf("%.0f vs %.0f MiB", float64(rss)/mib, float64(s)/mib), float64(rss) <= 1.1*float64(s))
		}
	}
	small, big := r.result("c128"), r.result("c256")
	for _, res := range []*result{small, big} {
		if res == nil || res.stat(cFull).wall == 0 || res.stat(cRaw).cpu == 0 {
			continue
		}
		full, raw := res.stat(cFull), res.stat(cRaw)
		line(fmt.Sprintf("(%s) CPU of the full export within 1.1x of the floor's", res.w.name), cpuRatios(res), full.cpu.Seconds() <= 1.1*raw.cpu.Seconds())
	}
	if big == nil && small != nil && small.stat(cFull).wall != 0 {
		rss := small.stat(cFull).rss
		line("(c) peak RSS of a full export of 128 MiB under 100 MiB", fmt.Sprintf("%.0f MiB", float64(rss)/mib), rss < 100*mib)
	}
	if big != nil && big.stat(cFull).wall != 0 {
		rss := big.stat(cFull).rss
		line("(c) peak RSS of a full export of 256 MiB under 100 MiB", fmt.Sprintf("%.0f MiB", float64(rss)/mib), rss < 100*mib)
		if small != nil && small.stat(cFull).wall != 0 {
			s := small.stat(cFull).rss
			line("(c) peak RSS flat when the log doubles (256 vs 128 MiB)", fmt.Sprintf("%.0f vs %.0f MiB", float64(rss)/mib, float64(s)/mib),
				float64(rss) <= 1.1*float64(s))
		}
	}
	return b.String()
}

// cpuRatios is the full export's CPU against the raw floor's (client-go's default protocol,
// HTTP/2, as the targets were set), and, if it ran, against the raw floor over HTTP/1.1, which a
// one-shot export reads with: the target is judged on the first, the second says what the
// export's own work costs on the same protocol.
func cpuRatios(res *result) string {
	full, raw, raw1 := res.stat(cFull), res.stat(cRaw), res.stat(cRawH1)
	s := ratio(full.cpu, raw.cpu)
	if raw1.cpu != 0 {
		s += fmt.Sprintf(" (%s the floor over HTTP/1.1)", ratio(full.cpu, raw1.cpu))
	}
	return s
}

// describeMachine names what the figures depend on.
func describeMachine(client kubernetes.Interface) string {
	parts := []string{fmt.Sprintf("%d cores", runtime.NumCPU())}
	if m := procField("/proc/cpuinfo", "model name"); m != "" {
		parts[0] += " (" + m + ")"
	}
	if m := procField("/proc/meminfo", "MemTotal"); m != "" {
		parts = append(parts, m+" memory")
	}
	parts = append(parts, runtime.Version())
	if v, err := client.Discovery().ServerVersion(); err == nil {
		parts = append(parts, "kube-apiserver "+v.GitVersion)
	}
	for _, tool := range []string{"kwok", "stern"} {
		parts = append(parts, tool+" "+toolVersion(tool))
	}
	return strings.Join(parts, ", ")
}

func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// toolVersion is the module version a tool was built from (they are built with go install, which
// stamps no version of their own).
func toolVersion(tool string) string {
	path, err := exec.LookPath(tool)
	if err != nil {
		return "(not found)"
	}
	out, err := exec.Command("go", "version", "-m", path).Output()
	if err != nil {
		return "(unknown)"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" {
			return f[2]
		}
	}
	return "(unknown)"
}
