package s3fake

import (
	"context"
	"testing"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/objstore/objstoretest"
)

// TestConformance holds the fake to the contract of every bucket the export writes to, through
// the real S3 client: a test that passes against it passes for what S3 does, not for what the
// fake happens to do.
func TestConformance(t *testing.T) {
	s := New(t, "logs")
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
	for _, tt := range []struct {
		name   string
		prefix string
		cfg    objstore.S3Config
		opts   objstoretest.Options
	}{
		{"default pages", "default-pages/", objstore.S3Config{}, objstoretest.Options{}},
		{"small pages", "small-pages/", objstore.S3Config{ListPageSize: 7}, objstoretest.Options{Many: 50}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := objstore.NewS3(context.Background(), objstore.URL{Scheme: "s3", Bucket: "logs"}, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			objstoretest.Run(t, b, tt.prefix, tt.opts)
		})
	}
}
