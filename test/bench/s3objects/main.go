// Command s3objects answers the benchmark's questions about a bucket through the plugin's own
// S3 client (pkg/objstore), configured from the AWS environment as the plugin is.
//
//	s3objects ready s3://BUCKET          wait until the bucket answers a listing (a server starting)
//	s3objects size s3://BUCKET/PREFIX    print the objects under the prefix: count and bytes, by top folder, as JSON
//
// It is a program of its own, as test/bench/rusage is, so that the AWS SDK stays out of the
// benchmark's binary, which is also the raw floor being measured.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
)

// Usage is what a prefix holds: all of it, and by the first folder under the prefix (logs,
// checkpoints, runs, ...).
type Usage struct {
	Objects int64            `json:"objects"`
	Bytes   int64            `json:"bytes"`
	ByDir   map[string]Count `json:"by_dir"`
}

type Count struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "s3objects: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: s3objects ready|size s3://BUCKET[/PREFIX]")
	}
	u, err := objstore.ParseURL(args[1])
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch args[0] {
	case "ready":
		return ready(ctx, u, 2*time.Minute)
	case "size":
		b, err := objstore.NewS3(ctx, u, objstore.S3Config{})
		if err != nil {
			return err
		}
		use, err := size(ctx, b, u.Prefix)
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(use)
	}
	return fmt.Errorf("unknown command %q (ready, size)", args[0])
}

// ready lists the bucket until that works: the S3 port opens before the server has created
// the bucket and loaded the credentials.
func ready(ctx context.Context, u objstore.URL, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		b, err := objstore.NewS3(ctx, u, objstore.S3Config{})
		if err == nil {
			err = b.List(ctx, "", "", func(objstore.Object) error { return nil })
		}
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %w", u, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func size(ctx context.Context, b objstore.Bucket, prefix string) (Usage, error) {
	use := Usage{ByDir: map[string]Count{}}
	if prefix != "" {
		prefix += "/"
	}
	err := b.List(ctx, prefix, "", func(o objstore.Object) error {
		dir, _, _ := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
		c := use.ByDir[dir]
		c.Objects++
		c.Bytes += o.Size
		use.ByDir[dir] = c
		use.Objects++
		use.Bytes += o.Size
		return nil
	})
	return use, err
}
