// Package s3fake is an in-process S3 server for tests: gofakes3 with its in-memory backend behind
// an httptest server, reached by the real client (aws-sdk-go-v2, through pkg/objstore) over HTTP,
// from the test process and from the binaries it starts alike. It keeps the unit tests free of
// the SeaweedFS build that the end-to-end tests use; TestConformance holds it to the same
// contract (pkg/objstore/objstoretest) as SeaweedFS and the in-memory fake.
package s3fake

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Credentials the server accepts (it checks no signature); the AWS variables Env returns.
const (
	AccessKey = "s3fake"
	SecretKey = "s3fake-secret"
)

// Server is a running fake S3 server.
type Server struct {
	http   *httptest.Server
	closed chan struct{}
	once   sync.Once

	mu   sync.Mutex
	hold func(r *http.Request) bool
}

// New starts a server with the buckets named; it stops when the test ends.
func New(t testing.TB, buckets ...string) *Server {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatalf("s3fake: creating bucket %s: %v", b, err)
		}
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	s := &Server{closed: make(chan struct{})}
	h := faker.Server()
	s.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hold := s.hold
		s.mu.Unlock()
		if hold != nil && hold(r) {
			s.swallow(r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Hold sets a hook that sees every request first: a request it returns true for is held and
// never served nor stored, until its client goes away (a test kills the process that sent it:
// a crash just before that write) or a minute has passed. nil serves every request.
func (s *Server) Hold(hook func(r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = hook
}

func (s *Server) swallow(r *http.Request) {
	// The server notices a client that hung up only once the body is read.
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-s.closed:
	case <-time.After(time.Minute):
	}
}

// Endpoint is the server's URL, for --s3-endpoint or AWS_ENDPOINT_URL.
func (s *Server) Endpoint() string { return s.http.URL }

// Env is the AWS environment that points a client at the server: CredentialsEnv and the
// endpoint.
func (s *Server) Env() map[string]string {
	env := CredentialsEnv()
	env["AWS_ENDPOINT_URL"] = s.http.URL
	return env
}

// CredentialsEnv is the AWS environment of a client of any of these servers, but its endpoint:
// region and credentials, and no shared files or instance role of the machine running the tests.
func CredentialsEnv() map[string]string {
	return map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": AccessKey, "AWS_SECRET_ACCESS_KEY": SecretKey,
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
	}
}

// Close stops the server before the test ends.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.http.CloseClientConnections()
		s.http.Close()
	})
}
