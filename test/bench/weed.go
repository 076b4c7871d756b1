package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// weedServer is the S3 server the bucket contender exports into: a SeaweedFS `weed mini` (master,
// volume server, filer and S3 gateway in one process, as the e2e tests start it), on ports picked
// free, with one bucket. One per benchmark run: its start-up (seconds) is not charged to any
// contender.
type weedServer struct {
	endpoint string
	bucket   string
	cmd      *exec.Cmd
	dir      string
	exited   chan struct{}
}

const (
	weedAccessKey = "admin"
	weedSecretKey = "secret"
)

// env points the plugin (and s3objects) at the server.
func (s *weedServer) env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.endpoint,
		"AWS_ACCESS_KEY_ID=" + weedAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + weedSecretKey,
		"AWS_REGION=us-east-1",
		// No instance metadata service here: the SDK must not wait for one.
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// startWeed starts weed from toolsBin and waits until its bucket answers, through s3objects.
// Ports are picked free, then bound by weed a moment later: another process can take one in
// between, which weed reports by exiting, so it tries again on new ports.
func startWeed(toolsBin, s3objects string) (*weedServer, error) {
	for attempt := 1; ; attempt++ {
		s, err := launchWeed(filepath.Join(toolsBin, "weed"), s3objects)
		if err == nil || attempt == 3 {
			return s, err
		}
		fmt.Fprintf(os.Stderr, "bench: S3 server, attempt %d: %v; trying again on other ports\n", attempt, err)
	}
}

func launchWeed(weed, s3objects string) (*weedServer, error) {
	dir, err := os.MkdirTemp("", "logexport-bench-weed-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(10)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port := func(i int) string { return strconv.Itoa(ports[i]) }
	s := &weedServer{endpoint: "http://127.0.0.1:" + port(0), bucket: "bench", dir: dir, exited: make(chan struct{})}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"mini", "-dir=" + data,
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-s3.port=" + port(0), "-s3.port.grpc=" + port(1),
		"-master.port=" + port(2), "-master.port.grpc=" + port(3),
		"-volume.port=" + port(4), "-volume.port.grpc=" + port(5),
		"-filer.port=" + port(6), "-filer.port.grpc=" + port(7),
		"-admin.port=" + port(8), "-admin.port.grpc=" + port(9),
		// What the bench does not use stays off, so that it opens no port of its own.
		"-admin.port.legacy=0", "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
		"-master.telemetry=false",
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
	}
	logPath := filepath.Join(dir, "weed.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close()
	c := exec.Command(weed, args...)
	c.Dir = dir
	// weed mini creates S3_BUCKET and an identity with these keys at start-up.
	c.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+weedAccessKey, "AWS_SECRET_ACCESS_KEY="+weedSecretKey, "S3_BUCKET="+s.bucket)
	c.Stdout, c.Stderr = logFile, logFile
	// Its own process group, so that stop reaches whatever it starts.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting weed: %w", err)
	}
	s.cmd = c
	go func() {
		_ = c.Wait()
		close(s.exited)
	}()
	start := time.Now()
	ready := exec.Command(s3objects, "ready", "s3://"+s.bucket)
	ready.Env, ready.Stderr = append(os.Environ(), s.env()...), os.Stderr
	readyErr := make(chan error, 1)
	go func() { readyErr <- ready.Run() }()
	select {
	case err = <-readyErr:
	case <-s.exited:
		_ = ready.Process.Kill()
		<-readyErr
		err = fmt.Errorf("weed exited: %v", c.ProcessState)
	}
	if err != nil {
		log, _ := os.ReadFile(logPath)
		s.stop()
		return nil, fmt.Errorf("%w\nweed %s\n%s", err, strings.Join(args, " "), lastBytes(string(log), 4000))
	}
	fmt.Fprintf(os.Stderr, "bench: S3 server (weed mini) at %s ready in %.1fs\n", s.endpoint, time.Since(start).Seconds())
	return s, nil
}

// cpu is the CPU time (user+system) weed has used so far, from /proc: the bucket contender's
// server-side cost, read before and after each of its runs.
func (s *weedServer) cpu() (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	d, err := statCPU(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// statCPU reads utime and stime, fields 14 and 15 of proc(5)'s /proc/PID/stat, in clock ticks
// of 1/100 s (USER_HZ).
func statCPU(stat string) (time.Duration, error) {
	// The command name, in parentheses, may hold spaces and parentheses: fields count from
	// after the last ')'. The first after it is field 3, the state.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("too few fields in %q", stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("utime and stime are not numbers in %q", stat)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// stop ends the server and everything in its process group: SIGTERM lets weed shut down its
// components in order, SIGKILL follows if it takes too long.
func (s *weedServer) stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
	os.RemoveAll(s.dir)
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
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
