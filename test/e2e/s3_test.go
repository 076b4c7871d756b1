package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/seaweed"
)

// s3Server is the package's SeaweedFS `weed mini` (see test/seaweed), built by hack/tools.sh and
// started once per test binary on ports picked free, so that parallel runs and whatever else the
// machine runs do not clash; request checks it without an S3 client library.
type s3Server struct {
	*seaweed.Server
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
	from := s.LogSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("S3 server log meanwhile:\n%s", s.LogSince(from))
		}
	})
	return s
}

// stopS3 stops the package's S3 server if a test started it.
func stopS3() {
	if s3Shared != nil {
		s3Shared.Stop()
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
	srv, err := seaweed.Start(weed, "e2e", "e2e", 2*time.Minute, func(ctx context.Context, srv *seaweed.Server) error {
		return (&s3Server{srv}).waitReady(ctx)
	})
	if err != nil {
		return nil, err
	}
	return &s3Server{srv}, nil
}

// waitReady waits until the bucket answers a signed request.
func (s *s3Server) waitReady(ctx context.Context) error {
	var last error
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("S3 server not ready: %v", last)
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
