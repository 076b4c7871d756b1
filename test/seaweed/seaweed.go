// Package seaweed starts a SeaweedFS `weed mini` (master, volume server, filer and S3 gateway in
// one process, built by hack/tools.sh weed) on ports picked free, with one bucket: the S3 server
// of the end-to-end tests and of the benchmark's bucket contender.
package seaweed

import (
	"context"
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

// The keys of the identity weed mini creates at start-up.
const (
	AccessKey = "admin"
	SecretKey = "secret"
)

// Server is a running weed mini.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string // created at start-up
	// LogPath is what weed logs (warnings and errors).
	LogPath string

	cmd    *exec.Cmd
	dir    string
	exited chan struct{}
}

// Ready tells when a started server answers: the S3 port opens before weed has created the bucket
// and loaded the credentials, so it is asked through an S3 request the caller signs its own way.
// It should return once ctx is done.
type Ready func(ctx context.Context, s *Server) error

// Start starts weed with a bucket and waits (up to timeout) until ready says it answers. Ports are
// picked free, then bound by weed a moment later: another process can take one in between, which
// weed reports by exiting, so it tries again on new ports, up to three times. prefix names the
// temporary directory and the messages.
func Start(weed, bucket, prefix string, timeout time.Duration, ready Ready) (*Server, error) {
	for attempt := 1; ; attempt++ {
		s, err := launch(weed, bucket, prefix, timeout, ready)
		if err == nil || attempt == 3 {
			return s, err
		}
		fmt.Fprintf(os.Stderr, "%s: S3 server, attempt %d: %v; trying again on other ports\n", prefix, attempt, err)
	}
}

func launch(weed, bucket, prefix string, timeout time.Duration, ready Ready) (*Server, error) {
	dir, err := os.MkdirTemp("", "logexport-"+prefix+"-weed-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(10)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		AccessKey: AccessKey,
		SecretKey: SecretKey,
		Region:    "us-east-1",
		Bucket:    bucket,
		LogPath:   filepath.Join(dir, "weed.log"),
		dir:       dir,
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
		// What is not used stays off, so that it opens no port of its own.
		"-admin.port.legacy=0", "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
		"-master.telemetry=false",
		// Unix sockets default to /tmp/seaweedfs-*-PORT.sock; keep those that can move in the run's dir.
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
	}
	logFile, err := os.Create(s.LogPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close()
	c := exec.Command(weed, args...)
	c.Dir = dir
	// weed mini creates S3_BUCKET and an identity with these keys at start-up.
	c.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s.AccessKey, "AWS_SECRET_ACCESS_KEY="+s.SecretKey, "S3_BUCKET="+s.Bucket)
	c.Stdout, c.Stderr = logFile, logFile
	// Its own process group, so that Stop reaches whatever it starts.
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
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	readyErr := make(chan error, 1)
	go func() { readyErr <- ready(ctx, s) }()
	select {
	case err = <-readyErr:
	case <-s.exited:
		cancel()
		<-readyErr
		err = fmt.Errorf("weed exited: %v", c.ProcessState)
	}
	if err != nil {
		log := s.LogSince(0)
		s.Stop()
		return nil, fmt.Errorf("%w\nweed %s\n%s", err, strings.Join(args, " "), log)
	}
	fmt.Fprintf(os.Stderr, "%s: S3 server (weed mini) at %s ready in %.1fs\n", prefix, s.Endpoint, time.Since(started).Seconds())
	return s, nil
}

// Env is the environment that points the plugin (any AWS SDK or CLI) at the server.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		// No instance metadata service here: an SDK must not wait for one.
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Exited is closed when weed has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// PID is weed's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop ends the server and everything in its process group: SIGTERM lets weed shut down its
// components in order, SIGKILL follows if it takes too long.
func (s *Server) Stop() {
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

// LogSize is the length of the log so far, to show what weed logged from then on (LogSince).
func (s *Server) LogSize() int64 {
	fi, err := os.Stat(s.LogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LogSince returns what weed logged from offset from on, its last 4,000 bytes.
func (s *Server) LogSince(from int64) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	if from > int64(len(b)) {
		from = 0
	}
	if int64(len(b)) == from {
		return "(nothing: weed mini logs only warnings and errors)"
	}
	if b = b[from:]; len(b) > 4000 {
		return "..." + string(b[len(b)-4000:])
	}
	return string(b)
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
