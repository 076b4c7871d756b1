package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// readCRI parses a generated file back: lines, printed bytes, and the timestamps in order.
func readCRI(t *testing.T, path string) (lines, payload int64, stamps []time.Time) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ts, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(rest, "stdout F ") {
			t.Fatalf("not a CRI entry: %q", sc.Text())
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatal(err)
		}
		stamps = append(stamps, at)
		lines++
		payload += int64(len(rest)-len("stdout F ")) + 1
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines, payload, stamps
}

func TestLogFile(t *testing.T) {
	for _, size := range []int64{1, 20 << 10, 1 << 20} {
		f := &logFile{path: filepath.Join(t.TempDir(), "0.log"), tag: "p/c"}
		if err := f.create(size); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		lines, payload, _ := readCRI(t, f.path)
		if st.Size() != f.size || f.size < size || lines != f.lines || payload != f.payload {
			t.Fatalf("size %d: file %d bytes, %d lines, %d printed; accounted %d bytes, %d lines, %d printed",
				size, st.Size(), lines, payload, f.size, f.lines, f.payload)
		}
		if err := f.grow(0.01); err != nil {
			t.Fatal(err)
		}
		all, allPayload, grown := readCRI(t, f.path)
		if all-lines != f.grownLines || allPayload-payload != f.grownPayload || f.grownLines < 1 {
			t.Fatalf("size %d: grew by %d lines, %d bytes; accounted %d, %d", size, all-lines, allPayload-payload, f.grownLines, f.grownPayload)
		}
		// Timestamps grow, but for the repeated lines, which have their predecessor's.
		repeats := 0
		for i := 1; i < len(grown); i++ {
			if grown[i].Before(grown[i-1]) {
				t.Fatalf("size %d: timestamp %d (%s) before %s", size, i, grown[i], grown[i-1])
			}
			if grown[i].Equal(grown[i-1]) {
				repeats++
			}
		}
		if want := int(all) / (repeatEvery + 1); repeats < want {
			t.Fatalf("size %d: %d repeated lines in %d, want at least %d", size, repeats, all, want)
		}
		if err := f.shrink(); err != nil {
			t.Fatal(err)
		}
		if again, _, _ := readCRI(t, f.path); again != lines {
			t.Fatalf("size %d: %d lines after shrinking, want %d", size, again, lines)
		}
		// A second growth appends the same lines again: every repetition sees the same workload.
		before := f.grownPayload
		if err := f.grow(0.01); err != nil || f.grownPayload != before {
			t.Fatalf("size %d: second growth %d bytes (%v), first %d", size, f.grownPayload, err, before)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := func(wall, cpu int, rss int64) sample {
		return sample{wall: time.Duration(wall) * time.Second, cpu: time.Duration(cpu) * time.Second, rss: rss}
	}
	tests := []struct {
		name    string
		samples []sample
		want    stats
	}{
		{"none", nil, stats{}},
		{"odd", []sample{s(5, 1, 10), s(1, 3, 30), s(3, 2, 20)}, stats{wall: 3 * time.Second, minWall: time.Second, maxWall: 5 * time.Second, cpu: 2 * time.Second, rss: 30}},
		{"even", []sample{s(4, 4, 1), s(1, 1, 1), s(2, 2, 5), s(3, 3, 1)}, stats{wall: 2500 * time.Millisecond, minWall: time.Second, maxWall: 4 * time.Second, cpu: 2500 * time.Millisecond, rss: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.samples); got != tt.want {
				t.Errorf("summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSkipSlow(t *testing.T) {
	sec := func(n int) []sample { return []sample{{wall: time.Duration(n) * time.Second}} }
	res := &result{samples: map[string][]sample{cRaw: sec(1), cFull: sec(20), cStern: sec(11), cKubectl: sec(9)}}
	tests := []struct {
		factor    float64
		contender string
		want      bool
	}{
		{10, cStern, true},
		{10, cKubectl, false},
		{10, cFull, false}, // the subject of the benchmark always repeats
		{10, cIncr, false}, // no run yet
		{0, cStern, false},
		{20, cStern, false},
	}
	for _, tt := range tests {
		if got := res.skip(tt.factor)(tt.contender); got != tt.want {
			t.Errorf("skip(%g)(%s) = %v, want %v", tt.factor, tt.contender, got, tt.want)
		}
	}
}

// A run with -contenders reports only the targets it measured, rather than calling the others
// missed.
func TestTargetsOfPartialRuns(t *testing.T) {
	sec := func(n float64) []sample { return []sample{{wall: time.Duration(n * float64(time.Second))}} }
	w := &workload{name: "b"}
	tests := []struct {
		name    string
		samples map[string][]sample
		want    []string
	}{
		{"all", map[string][]sample{cRaw: sec(10), cFull: sec(11), cIncr: sec(9), cStern: sec(400), cKubectl: sec(400)}, []string{
			"| (b) full export within 1.2x of the raw floor | 1.10x | yes |",
			"| (b) full export faster than stern and kubectl logs | 0.03x of stern, 0.03x of kubectl logs | yes |",
			"| (b) +1% incremental run bound by listing and requests: within 1.2x of the raw floor | 0.90x | yes |",
		}},
		{"no stern", map[string][]sample{cRaw: sec(10), cFull: sec(13), cIncr: sec(9)}, []string{
			"| (b) full export within 1.2x of the raw floor | 1.30x | NO |",
			"| (b) +1% incremental run bound by listing and requests: within 1.2x of the raw floor | 0.90x | yes |",
		}},
		{"no export", map[string][]sample{cRaw: sec(10), cStern: sec(400)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &report{results: []*result{{w: w, samples: tt.samples}}}
			got := strings.Split(strings.TrimSuffix(r.targets(), "\n"), "\n")
			if tt.want == nil {
				tt.want = []string{""}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// The CPU target is judged against the raw floor as the targets were set (client-go's default,
// HTTP/2); the floor over HTTP/1.1, when it ran, is shown beside it and does not change the verdict.
func TestCPUTargets(t *testing.T) {
	cpu := func(n float64) []sample {
		return []sample{{wall: time.Second, cpu: time.Duration(n * float64(time.Second))}}
	}
	tests := []struct {
		name    string
		samples map[string][]sample
		want    string
	}{
		{"h2 floor only", map[string][]sample{cRaw: cpu(2), cFull: cpu(2.1), cIncr: cpu(0.1)},
			"| (c128) CPU of the full export within 1.1x of the floor's | 1.05x | yes |"},
		{"both floors", map[string][]sample{cRaw: cpu(2), cRawH1: cpu(1.4), cFull: cpu(1.68), cIncr: cpu(0.1)},
			"| (c128) CPU of the full export within 1.1x of the floor's | 0.84x (1.20x the floor over HTTP/1.1) | yes |"},
		{"missed", map[string][]sample{cRaw: cpu(2), cRawH1: cpu(1.4), cFull: cpu(2.4), cIncr: cpu(0.1)},
			"| (c128) CPU of the full export within 1.1x of the floor's | 1.20x (1.71x the floor over HTTP/1.1) | NO |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &report{results: []*result{{w: &workload{name: "c128"}, samples: tt.samples}}}
			got := strings.Split(strings.TrimSuffix(r.targets(), "\n"), "\n")
			if got[0] != tt.want {
				t.Errorf("targets:\n%s\nwant first:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

// The lost/doubled column: a line served twice must be stored twice. The original tool's set
// merge stores a repeated line once, on the first run and again on an incremental one.
func TestAccuracy(t *testing.T) {
	dir := t.TempDir()
	w := &workload{namespace: "ns"}
	f := &logFile{path: filepath.Join(dir, "served.log"), tag: "p/c", start: t0}
	if err := f.create(100 << 10); err != nil {
		t.Fatal(err)
	}
	w.files = []*logFile{f}
	served, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string // what kubectl logs prints, line by line
	var stamped []string
	for _, l := range strings.Split(strings.TrimSuffix(string(served), "\n"), "\n") {
		ts, rest, _ := strings.Cut(l, " stdout F ")
		texts = append(texts, rest)
		stamped = append(stamped, ts+" "+rest)
	}
	repeats := int64(len(texts)) / (repeatEvery + 1)
	if repeats < 2 {
		t.Fatalf("only %d repeated lines in %d", repeats, len(texts))
	}
	write := func(name string, lines []string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := setMerge(nil, []byte(strings.Join(stamped, "\n")+"\n"))
	again := setMerge(full, []byte(strings.Join(stamped, "\n")+"\n"))
	if !bytes.Equal(full, again) {
		t.Fatalf("a second set merge of the same log changed the file")
	}
	tests := []struct {
		name          string
		stored        []string // files, in turn
		stamped       bool
		lost, doubled int64
	}{
		{"exact", []string{write("exact", texts)}, false, 0, 0},
		{"exact in two files", []string{write("head", texts[:10]), write("tail", texts[10:])}, false, 0, 0},
		{"missing file", []string{filepath.Join(dir, "none")}, false, int64(len(texts)), 0},
		{"one lost, one doubled", []string{write("off", append(append([]string{}, texts[1:]...), texts[5]))}, false, 1, 1},
		{"stamped", []string{write("stamped", stamped)}, true, 0, 0},
		{"set merge", []string{write("set", strings.Split(strings.TrimSuffix(string(full), "\n"), "\n"))}, true, repeats, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lost, doubled, err := accuracy(w, false, tt.stamped, tt.stored...)
			if err != nil {
				t.Fatal(err)
			}
			if lost != tt.lost || doubled != tt.doubled {
				t.Fatalf("lost %d, doubled %d; want %d, %d", lost, doubled, tt.lost, tt.doubled)
			}
		})
	}
}

func TestStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{"plain", "20743 (weed) S 1 20743 11426 0 -1 4194304 98 0 0 0 250 31 7 9 20 0 1 0", 2810 * time.Millisecond, false},
		// A command name may hold spaces and parentheses.
		{"odd name", "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0", 30 * time.Millisecond, false},
		{"cut short", "7 (weed) S 1 7 7 0 -1 0 0 0 0 0 1", 0, true},
		{"no name", "7 weed S 1 7 7 0 -1 0 0 0 0 0 1 2 0 0", 0, true},
		{"not numbers", "7 (weed) S 1 7 7 0 -1 0 0 0 0 0 x 2 0 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statCPU(tt.stat)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("statCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// The bucket's table compares it with the directory of the same run, and is left out when
// either did not run.
func TestBucketTable(t *testing.T) {
	s := func(wall, cpu, server float64, rss, stored int64) sample {
		d := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
		return sample{wall: d(wall), cpu: d(cpu), serverCPU: d(server), rss: rss * mib, stored: stored, objects: 4, segments: 2, checkpoints: 1, pull: d(1)}
	}
	full := []sample{s(10, 2, 0, 30, 100e6), s(12, 2.2, 0, 32, 100e6), s(11, 2.4, 0, 31, 100e6)}
	bucket := []sample{s(15, 3, 1, 60, 5e6), s(16.5, 3.3, 1.5, 64, 5e6), s(14, 3.6, 2, 62, 5e6)}
	tests := []struct {
		name    string
		samples map[string][]sample
		want    []string // lines the table must hold; none: no table
	}{
		{"directory only", map[string][]sample{cFull: full}, nil},
		{"bucket only", map[string][]sample{cBucket: bucket}, nil},
		{"both, full runs only", map[string][]sample{cFull: full, cBucket: bucket}, []string{
			"| wall, x directory | 1.36x | - |",
			"| plugin CPU, x directory | 1.50x | - |",
			"| plugin peak RSS, x directory | 2.00x (64 MiB) | - |",
			"| S3 server (weed) CPU s, x plugin CPU | 1.50 (0.45x) | - |",
			"| stored MB: bucket / directory | 5.0 / 100.0 (0.05x) | - |",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := (&result{w: &workload{name: "a"}, samples: tt.samples}).bucketTable()
			if len(tt.want) == 0 && got != "" {
				t.Fatalf("a table without both contenders:\n%s", got)
			}
			for _, line := range tt.want {
				if !strings.Contains(got, line+"\n") {
					t.Errorf("no line %q in\n%s", line, got)
				}
			}
		})
	}
}

// TestStoreBody: the storage floor stores a body as served, counts its lines, and refuses to
// write over a file (a leftover would make it look faster than it is).
func TestStoreBody(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "ns", "pod", "c.log")
	body := "2026-11-30T00:00:00Z a\n2026-11-30T00:00:01Z b\n"
	var lines int64
	if err := storeBody(name, strings.NewReader(body), &lines); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(name); err != nil || string(got) != body || lines != 2 {
		t.Errorf("stored %q (%v), %d lines; want %q, 2 lines", got, err, lines, body)
	}
	if err := syncStore(dir); err != nil {
		t.Error(err)
	}
	if err := storeBody(name, strings.NewReader(body), &lines); err == nil {
		t.Error("stored over an existing file")
	}
}

// TestDrainReusesBuffer: the floors read every body through a buffer kept from one body to the
// next, as the export does; a buffer allocated per body made the storage floor pay for 2,000 of
// them on (b), a cost no export pays.
func TestDrainReusesBuffer(t *testing.T) {
	body := bytes.Repeat([]byte("2026-11-30T00:00:00Z a line\n"), 20<<10/28)
	r := bytes.NewReader(body)
	for _, w := range []io.Writer{nil, io.Discard} {
		var lines int64
		allocs := testing.AllocsPerRun(100, func() {
			r.Reset(body)
			lines = 0
			if err := drain(r, &lines, w); err != nil {
				t.Fatal(err)
			}
		})
		if allocs >= 1 || lines != int64(bytes.Count(body, []byte("\n"))) {
			t.Errorf("writer %v: %.1f allocations a body, %d lines; want none, %d", w, allocs, lines, bytes.Count(body, []byte("\n")))
		}
	}
}
