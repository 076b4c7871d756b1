// Package s3fake is an in-process S3 server for tests: gofakes3 with its in-memory backend behind
// an httptest server, reached by the real client (aws-sdk-go-v2, through pkg/objstore) over HTTP,
// from the test process and from the binaries it starts alike. It keeps the unit tests free of
// the SeaweedFS build that the end-to-end tests use; TestConformance holds it to the same
// contract (pkg/objstore/objstoretest) as SeaweedFS and the in-memory fake.
package s3fake

import (
	"net/http/httptest"
	"testing"

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
	http *httptest.Server
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
	s := &Server{http: httptest.NewServer(faker.Server())}
	t.Cleanup(s.http.Close)
	return s
}

// Endpoint is the server's URL, for --s3-endpoint or AWS_ENDPOINT_URL.
func (s *Server) Endpoint() string { return s.http.URL }

// Env is the AWS environment that points a client at the server: endpoint, region and
// credentials, and no shared files or instance role of the machine running the tests.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL": s.http.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": AccessKey, "AWS_SECRET_ACCESS_KEY": SecretKey,
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
	}
}
