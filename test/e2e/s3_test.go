package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// s3Server is a SeaweedFS `weed mini` (master, volume server, filer and S3 gateway in one process)
// built by hack/tools.sh, started once per test binary on ports picked free, so that parallel runs
// and whatever else the machine runs do not clash.
type s3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string // created at start-up

	cmd     *exec.Cmd
	dir     string
	logPath string
	exited  chan struct{}
}

var (
	s3Once   sync.Once
	s3Shared *s3Server
	s3Err    error
)

// s3 returns the package's S3 server, starting it on first use; TestMain stops it. If the test
// fails, what the server logged meanwhile is printed with it.
func s3(t *testing.T) *s3Server {
	t.Helper()
	s3Once.Do(func() { s3Shared, s3Err = startS3() })
	if s3Err != nil {
		t.Fatalf("starting the S3 server: %v", s3Err)
	}
	s := s3Shared
	from := s.logSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("S3 server log meanwhile:\n%s", s.logSince(from))
		}
	})
	return s
}

// stopS3 stops the package's S3 server if a test started it.
func stopS3() {
	if s3Shared != nil {
		s3Shared.stop()
	}
}

// Env is the environment that points the plugin (any AWS SDK or CLI) at the server.
func (s *s3Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		// No instance metadata service here: an SDK must not wait for one.
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

func startS3() (*s3Server, error) {
	tools := exec.Command(filepath.Join(repoRoot, "hack", "tools.sh"), "weed")
	tools.Stderr = os.Stderr
	out, err := tools.Output()
	if err != nil {
		return nil, fmt.Errorf("building weed: %w", err)
	}
	weed := filepath.Join(strings.TrimSpace(string(out)), "weed")
	// Ports are picked free, then bound by weed a moment later: another process can take one in
	// between, which weed reports by exiting, so try again on new ports.
	for attempt := 1; ; attempt++ {
		s, err := launchS3(weed)
		if err == nil || attempt == 3 {
			return s, err
		}
		fmt.Fprintf(os.Stderr, "e2e: S3 server, attempt %d: %v; trying again on other ports\n", attempt, err)
	}
}

func launchS3(weed string) (*s3Server, error) {
	dir, err := os.MkdirTemp("", "logexport-e2e-s3-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(10)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &s3Server{
		Endpoint:  "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		AccessKey: "admin",
		SecretKey: "secret",
		Region:    "us-east-1",
		Bucket:    "e2e",
		dir:       dir,
		logPath:   filepath.Join(dir, "weed.log"),
		exited:    make(chan struct{}),
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port := func(i int) string { return strconv.Itoa(ports[i]) }
	args := []string{"mini",
		"-dir=" + data,
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-s3.port=" + port(0), "-s3.port.grpc=" + port(1),
		"-master.port=" + port(2), "-master.port.grpc=" + port(3),
		"-volume.port=" + port(4), "-volume.port.grpc=" + port(5),
		"-filer.port=" + port(6), "-filer.port.grpc=" + port(7),
		"-admin.port=" + port(8), "-admin.port.grpc=" + port(9),
		// What the tests do not use stays off, so that it opens no port of its own.
		"-admin.port.legacy=0", "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
		"-master.telemetry=false",
		// Unix sockets default to /tmp/seaweedfs-*-PORT.sock; keep those that can move in the run's dir.
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close()
	c := exec.Command(weed, args...)
	c.Dir = dir
	c.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+s.AccessKey, "AWS_SECRET_ACCESS_KEY="+s.SecretKey, "S3_BUCKET="+s.Bucket)
	c.Stdout, c.Stderr = logFile, logFile
	// Its own process group, so that stop reaches whatever it starts.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting weed: %w", err)
	}
	s.cmd = c
	started := time.Now()
	go func() {
		_ = c.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(2 * time.Minute); err != nil {
		log := s.logSince(0)
		s.stop()
		return nil, fmt.Errorf("%w\nweed %s\n%s", err, strings.Join(args, " "), log)
	}
	fmt.Fprintf(os.Stderr, "e2e: S3 server (weed mini) at %s ready in %.1fs\n", s.Endpoint, time.Since(started).Seconds())
	return s, nil
}

// waitReady waits until the bucket answers a signed request: the S3 port opens before weed has
// created the bucket and loaded the credentials.
func (s *s3Server) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("weed exited: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("S3 server not ready after %v: %v", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
		res, err := s.request(ctx, http.MethodHead, s.url(""), "")
		switch {
		case err != nil:
			last = err
		case res.code != http.StatusOK:
			last = fmt.Errorf("HEAD bucket: %d", res.code)
		default:
			return nil
		}
	}
}

// stop ends the server and everything in its process group: SIGTERM lets weed shut down its
// components in order, SIGKILL follows if it takes too long.
func (s *s3Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

func (s *s3Server) logSize() int64 {
	fi, err := os.Stat(s.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (s *s3Server) logSince(from int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	if from > int64(len(b)) {
		from = 0
	}
	if int64(len(b)) == from {
		return "(nothing: weed mini logs only warnings and errors)"
	}
	return clip(string(b[from:]))
}

// url is the path-style URL of key in the server's bucket (the bucket itself for key "").
func (s *s3Server) url(key string) string {
	u := s.Endpoint + "/" + s.Bucket
	if key != "" {
		u += "/" + key
	}
	return u
}

type curlResult struct {
	code int
	body string
}

// request sends one request signed with AWS SigV4 by curl itself, so that checking the server needs
// no S3 client library; headers are "Name: value".
func (s *s3Server) request(ctx context.Context, method, url, body string, headers ...string) (curlResult, error) {
	const marker = "\n--http-code:"
	sum := sha256.Sum256([]byte(body))
	args := []string{"--silent", "--show-error", "--max-time", "30",
		"--aws-sigv4", "aws:amz:" + s.Region + ":s3", "--user", s.AccessKey + ":" + s.SecretKey,
		"--write-out", marker + "%{http_code}",
		// curl 7.88 signs the payload's hash but does not send it, and weed then checks the signature
		// against the hash of an empty payload: send it, as the AWS SDKs do.
		"-H", "x-amz-content-sha256: " + hex.EncodeToString(sum[:])}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	switch method {
	case http.MethodGet:
	case http.MethodHead:
		args = append(args, "--head")
	case http.MethodPut, http.MethodPost:
		args = append(args, "-X", method, "-H", "Content-Type: application/octet-stream", "--data-binary", "@-")
	default:
		args = append(args, "-X", method)
	}
	c := exec.CommandContext(ctx, "curl", append(args, url)...)
	c.Stdin = strings.NewReader(body)
	out, err := c.Output()
	what := method + " " + url
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return curlResult{}, fmt.Errorf("curl %s: %w: %s", what, err, exit.Stderr)
		}
		return curlResult{}, fmt.Errorf("curl %s: %w", what, err)
	}
	i := strings.LastIndex(string(out), marker)
	if i < 0 {
		return curlResult{}, fmt.Errorf("curl %s: no status in %q", what, out)
	}
	code, err := strconv.Atoi(string(out[i+len(marker):]))
	if err != nil {
		return curlResult{}, fmt.Errorf("curl %s: status: %w", what, err)
	}
	return curlResult{code: code, body: string(out[:i])}, nil
}

// freePorts returns n distinct ports free on 127.0.0.1 at the time of the call: all are held open
// until the last is found, so none is handed out twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
