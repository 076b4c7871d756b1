package s3fake

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

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

// TestHold checks the crash the model test makes: a held write is never stored, and the server
// lets it go once its client hangs up.
func TestHold(t *testing.T) {
	s := New(t, "logs")
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
	b, err := objstore.NewS3(context.Background(), objstore.URL{Scheme: "s3", Bucket: "logs"}, objstore.S3Config{})
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan string, 1)
	s.Hold(func(r *http.Request) bool {
		if r.Method == http.MethodPut {
			held <- r.URL.Path
			return true
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := b.Put(ctx, "k", []byte("v"), objstore.PutOptions{}); err == nil {
		t.Fatal("a held put succeeded")
	}
	if got := <-held; got != "/logs/k" {
		t.Errorf("held %s, want /logs/k", got)
	}
	s.Hold(nil)
	if _, err := b.Get(context.Background(), "k"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("get of the held key: %v, want ErrNotFound", err)
	}
	if err := b.Put(context.Background(), "k", []byte("v"), objstore.PutOptions{}); err != nil {
		t.Fatalf("put once no longer held: %v", err)
	}
}
