package objstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/objstore/objstoretest"
	"github.com/logexport/kubectl-logexport/test/seaweed"
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
	// Only what the tests set: no profile, file or instance role of the machine running them.
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", seaweed.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", seaweed.SecretKey)
	w := startWeed(t, weed)
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
		objstoretest.Run(t, open(t, w.Bucket, objstore.S3Config{Endpoint: w.Endpoint}), "default-pages/", objstoretest.Options{})
	})
	t.Run("ConformanceSmallPages", func(t *testing.T) {
		b := open(t, w.Bucket, objstore.S3Config{Endpoint: w.Endpoint, ListPageSize: 7})
		objstoretest.Run(t, b, "small-pages/", objstoretest.Options{Many: 50})
	})
	t.Run("EndpointFromEnv", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL", w.Endpoint)
		b := open(t, w.Bucket, objstore.S3Config{})
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
			{name: "no such bucket", bucket: "nonexistent", cfg: objstore.S3Config{Endpoint: w.Endpoint}, want: objstore.ErrNoBucket,
				ops: []string{"list", "get"}},
			{name: "wrong secret", bucket: w.Bucket, cfg: objstore.S3Config{Endpoint: w.Endpoint},
				env: map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong"}, want: objstore.ErrAccessDenied},
			{name: "unknown key id", bucket: w.Bucket, cfg: objstore.S3Config{Endpoint: w.Endpoint},
				env: map[string]string{"AWS_ACCESS_KEY_ID": "nobody"}, want: objstore.ErrAccessDenied},
			{name: "no credentials", bucket: w.Bucket, cfg: objstore.S3Config{Endpoint: w.Endpoint},
				env: map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, want: objstore.ErrNoCredentials},
			{name: "unreachable", bucket: w.Bucket, cfg: objstore.S3Config{Endpoint: "http://" + closedPort(t)}, want: objstore.ErrUnreachable},
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

// startWeed starts `weed mini` (see test/seaweed) with one bucket and stops it with the test;
// the keys must be in the environment already.
func startWeed(t *testing.T, weed string) *seaweed.Server {
	t.Helper()
	w, err := seaweed.Start(weed, "test", "objstore", 2*time.Minute, func(ctx context.Context, s *seaweed.Server) error {
		// The S3 port opens before the bucket and the keys are loaded: wait until a signed list
		// of the bucket succeeds.
		b, err := objstore.NewS3(ctx, objstore.URL{Scheme: "s3", Bucket: s.Bucket}, objstore.S3Config{Endpoint: s.Endpoint, ListPageSize: 1})
		if err != nil {
			return err
		}
		for {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = b.List(lctx, "", "", func(objstore.Object) error { return nil })
			cancel()
			if err == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("weed's S3 gateway not ready: %w", err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("weed logged:\n%s", w.LogSince(0))
		}
		w.Stop()
	})
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
