package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a local address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// httpGet returns the status and body of a GET, or an error (nothing listens).
func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metricValue returns the value of one sample of a scrape (name with its labels as the text
// format writes them), and whether it is there.
func metricValue(scrape, sample string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(scrape)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// waitMetrics scrapes until every sample has its value (what is stored is counted when its
// checkpoint is saved, up to 2 s after the line is in the file), and returns the last scrape.
func waitMetrics(t *testing.T, base string, want map[string]float64) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var body, diff string
	for time.Now().Before(deadline) {
		var code int
		var err error
		code, body, err = httpGet(base + "/metrics")
		if err == nil && code == 200 {
			diff = ""
			for sample, v := range want {
				if got, ok := metricValue(body, sample); !ok || got != v {
					diff += fmt.Sprintf("%s = %v (present %v), want %v\n", sample, got, ok, v)
				}
			}
			if diff == "" {
				return body
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("metrics never matched:\n%s\nlast scrape:\n%s", diff, clip(body))
	return ""
}

func fileSize(t *testing.T, path string) float64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return float64(fi.Size())
}

// A follower with --metrics-bind-address: ready once it has listed the pods and read the
// checkpoints, healthy, and its counters are what the files hold; it stops serving and exits 0
// on SIGTERM.
func TestFollowMetrics(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	first := seq("m", 40)
	log := newLog(t).add(at(0, 0), first...)
	createPod(t, ns, pod{name: "p", containers: []container{{name: "app", log: log}}})
	// A second container, stopped and stored to its end: counted, not streamed.
	done := newLog(t).add(at(0, 0), "init-done")
	createPod(t, ns, pod{name: "q", containers: []container{{name: "init-setup", init: true, log: done}, {name: "app", log: newLog(t)}}})
	file := filepath.Join(dir, ns, "p", "app.log")
	addr := freeAddr(t)
	base := "http://" + addr
	// kwok keeps streaming a replaced file, a kubelet would not: reconnects catch the rotation.
	f := startFollow(t, "-n", ns, "-d", dir, "--metrics-bind-address", addr, "--reconnect-interval", "2s")

	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := httpGet(base + "/readyz")
		if err == nil && code == 200 && body == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never ready: %d %q %v\n%s", code, body, err, f.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body, err := httpGet(base + "/healthz"); err != nil || code != 200 || body != "ok" {
		t.Fatalf("/healthz: %d %q %v", code, body, err)
	}

	waitContent(t, file, lines(first...))
	more := seq("n", 25)
	log.add(at(2, 0), more...)
	all := append(first, more...)
	waitContent(t, file, lines(all...))
	nsl := `{namespace="` + ns + `"}`
	initFile := filepath.Join(dir, ns, "q", "init-setup.log")
	waitContent(t, initFile, lines("init-done"))
	scrape := waitMetrics(t, base, map[string]float64{
		"logexport_stored_lines_total" + nsl:  float64(len(all) + 1),
		"logexport_stored_bytes_total" + nsl:  fileSize(t, file) + fileSize(t, initFile),
		"logexport_streams_open":              2, // p/app and q/app
		"logexport_containers_followed":       3,
		"logexport_containers_stopped_stored": 1,
	})
	if n, ok := metricValue(scrape, "logexport_line_lag_seconds_count"); !ok || n < float64(len(all)+1) {
		t.Errorf("lag observed for %v lines, want at least the %d stored", n, len(all)+1)
	}
	// The lines are from 2024: their lag is over six hours.
	if n, ok := metricValue(scrape, `logexport_line_lag_seconds_bucket{le="21600"}`); !ok || n != 0 {
		t.Errorf("lag bucket le=21600: %v, want 0 for lines years old", n)
	}
	if _, ok := metricValue(scrape, "logexport_gaps_total"+nsl); ok {
		t.Errorf("a gap counted before any:\n%s", scrape)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "logexport_last_checkpoint_save_timestamp_seconds"} {
		if v, ok := metricValue(scrape, name); !ok || v <= 0 {
			t.Errorf("%s = %v (present %v), want it positive", name, v, ok)
		}
	}
	if strings.Contains(scrape, `pod="`) || strings.Contains(scrape, `container="`) {
		t.Errorf("a series per pod or container:\n%s", scrape)
	}

	// A rotation the follower notices is a gap, counted.
	log.replace("")
	log.add(at(5, 0), "after")
	all = append(all, "after")
	waitContent(t, file, lines(all...))
	waitMetrics(t, base, map[string]float64{
		"logexport_gaps_total" + nsl:         1,
		"logexport_stored_lines_total" + nsl: float64(len(all) + 1),
		"logexport_stored_bytes_total" + nsl: fileSize(t, file) + fileSize(t, initFile),
	})

	f.stop(syscall.SIGTERM)
	if _, _, err := httpGet(base + "/healthz"); err == nil {
		t.Fatal("still serving after the follower exited")
	}
	assertFile(t, file, lines(all...))
}

// The flag is refused, with one line and nothing written, where it cannot work.
func TestMetricsBindAddressErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ns := newNamespace(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-bind-address", ":8080"}, "error: --metrics-bind-address needs --follow"},
		{[]string{"-f", "--metrics-bind-address", "8080"}, `error: invalid --metrics-bind-address "8080"`},
		{[]string{"-f", "--metrics-bind-address", busy.Addr().String()}, "error: serving metrics: listen tcp " + busy.Addr().String()},
	} {
		res := logexport(t, append([]string{"-n", ns, "-d", dir}, tc.args...)...)
		if res.code != 1 || !strings.HasPrefix(res.stderr, tc.want) || strings.Count(res.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 1 and one line starting %q", tc.args, res.code, res.stderr, tc.want)
		}
	}
	// The address is tried before the directory is opened.
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused run created its directory: %v", err)
	}
}
