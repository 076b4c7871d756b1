package objstore_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/objstore/objstoretest"
)

// The fake is held to the contract the real server is held to in TestS3Weed.
func TestMemoryConformance(t *testing.T) {
	objstoretest.Run(t, objstore.NewMemory(), "p/", objstoretest.Options{})
}

// TestS3Weed runs the conformance test against SeaweedFS's S3 gateway, when OBJSTORE_TEST_WEED
// names a weed binary (hack/tools.sh builds one: ~/.cache/kubectl-logexport/tools/bin/weed).
func TestS3Weed(t *testing.T) {
	weed := os.Getenv("OBJSTORE_TEST_WEED")
	if weed == "" {
		t.Skip("OBJSTORE_TEST_WEED is not set to a weed binary")
	}
	w := startWeed(t, weed)
	// Only what the tests set: no profile, file or instance role of the machine running them.
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", w.accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", w.secretKey)
	ctx := context.Background()
	open := func(t *testing.T, bucket string, cfg objstore.S3Config) *objstore.S3 {
		t.Helper()
		b, err := objstore.NewS3(ctx, objstore.URL{Scheme: "s3", Bucket: bucket}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("Conformance", func(t *testing.T) {
		objstoretest.Run(t, open(t, w.bucket, objstore.S3Config{Endpoint: w.endpoint}), "default-pages/", objstoretest.Options{})
	})
	t.Run("ConformanceSmallPages", func(t *testing.T) {
		b := open(t, w.bucket, objstore.S3Config{Endpoint: w.endpoint, ListPageSize: 7})
		objstoretest.Run(t, b, "small-pages/", objstoretest.Options{Many: 50})
	})
	t.Run("EndpointFromEnv", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL", w.endpoint)
		b := open(t, w.bucket, objstore.S3Config{})
		if err := b.Put(ctx, "env/k", []byte("v"), objstore.PutOptions{}); err != nil {
			t.Errorf("Put with the endpoint from AWS_ENDPOINT_URL: %v", err)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		tests := []struct {
			name   string
			bucket string
			cfg    objstore.S3Config
			env    map[string]string
			want   error
			// ops checked, in order (all when empty)
			ops []string
		}{
			// SeaweedFS creates a missing bucket on a put by an admin: list and get only, before.
			{name: "no such bucket", bucket: "nonexistent", cfg: objstore.S3Config{Endpoint: w.endpoint}, want: objstore.ErrNoBucket,
				ops: []string{"list", "get"}},
			{name: "wrong secret", bucket: w.bucket, cfg: objstore.S3Config{Endpoint: w.endpoint},
				env: map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong"}, want: objstore.ErrAccessDenied},
			{name: "unknown key id", bucket: w.bucket, cfg: objstore.S3Config{Endpoint: w.endpoint},
				env: map[string]string{"AWS_ACCESS_KEY_ID": "nobody"}, want: objstore.ErrAccessDenied},
			{name: "no credentials", bucket: w.bucket, cfg: objstore.S3Config{Endpoint: w.endpoint},
				env: map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, want: objstore.ErrNoCredentials},
			{name: "unreachable", bucket: w.bucket, cfg: objstore.S3Config{Endpoint: "http://" + closedPort(t)}, want: objstore.ErrUnreachable},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for k, v := range tt.env {
					t.Setenv(k, v)
				}
				b := open(t, tt.bucket, tt.cfg)
				ops := map[string]func() error{
					"put": func() error { return b.Put(ctx, "errors/k", []byte("v"), objstore.PutOptions{}) },
					"get": func() error { _, err := b.Get(ctx, "errors/k"); return err },
					"list": func() error {
						return b.List(ctx, "errors/", "", func(objstore.Object) error { return nil })
					},
				}
				order := tt.ops
				if len(order) == 0 {
					order = []string{"list", "get", "put"}
				}
				for _, op := range order {
					err := ops[op]()
					if !errors.Is(err, tt.want) {
						t.Errorf("%s: %v, want %v", op, err, tt.want)
					}
					t.Logf("%s: %v", op, err)
				}
			})
		}
	})
}

type weedServer struct {
	endpoint, bucket, accessKey, secretKey string
}

// startWeed starts `weed mini` (master, volume server, filer and S3 gateway in one process) on
// free ports in a temporary directory, with one bucket and one pair of keys, and stops it with
// the test.
func startWeed(t *testing.T, weed string) weedServer {
	t.Helper()
	w := weedServer{bucket: "test", accessKey: "admin", secretKey: "secret"}
	dir := t.TempDir()
	ports := freePorts(t, 10)
	port := func(i int) string { return strconv.Itoa(ports[i]) }
	w.endpoint = "http://127.0.0.1:" + port(0)
	args := []string{"mini", "-dir=" + dir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-s3.port=" + port(0), "-s3.port.grpc=" + port(1),
		"-master.port=" + port(2), "-master.port.grpc=" + port(3),
		"-volume.port=" + port(4), "-volume.port.grpc=" + port(5),
		"-filer.port=" + port(6), "-filer.port.grpc=" + port(7),
		"-admin.port=" + port(8), "-admin.port.grpc=" + port(9),
		// Off, so that they open no port of their own.
		"-admin.port.legacy=0", "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
	}
	log, err := os.Create(filepath.Join(t.TempDir(), "weed.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(weed, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+w.accessKey, "AWS_SECRET_ACCESS_KEY="+w.secretKey, "S3_BUCKET="+w.bucket)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so that stopping it reaches whatever it starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("weed %v\n%s", args, b)
		}
	})

	// The S3 port opens before the bucket and the keys are loaded: wait until a signed list of
	// the bucket succeeds.
	t.Setenv("AWS_ACCESS_KEY_ID", w.accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", w.secretKey)
	b, err := objstore.NewS3(context.Background(), objstore.URL{Scheme: "s3", Bucket: w.bucket}, objstore.S3Config{Endpoint: w.endpoint, ListPageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = b.List(ctx, "", "", func(objstore.Object) error { return nil })
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("weed exited before answering: %v", cmd.ProcessState)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(started) > 2*time.Minute {
			t.Fatalf("weed's S3 gateway not ready after 2m: %v", err)
		}
	}
	t.Logf("weed mini at %s ready in %.1fs", w.endpoint, time.Since(started).Seconds())
	return w
}

// isolateAWSEnv keeps the machine's AWS configuration out of a test.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_ENDPOINT_URL": "",
		"AWS_ENDPOINT_URL_S3": "", "AWS_SESSION_TOKEN": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
	} {
		t.Setenv(k, v)
		if v == "" {
			os.Unsetenv(k) // t.Setenv restores it; "" and unset differ for some SDK variables
		}
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // held until all are picked, so that none is picked twice
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// closedPort is an address where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
