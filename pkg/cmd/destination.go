package cmd

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// destination is where a run writes, with its journal: a local directory or a bucket.
type destination interface {
	store.Destination
	StartRun(r store.Run) error
	EndRun(r store.Run) error
	Close() error
}

// toBucket tells whether --dir names a bucket (s3://BUCKET/PREFIX) rather than a directory.
func (o *Options) toBucket() bool { return objstore.IsURL(o.Dir) }

// openDest opens the destination --dir names: a bucket, or the directory, locked.
func (o *Options) openDest(ctx context.Context) (destination, error) {
	if !o.toBucket() {
		d, err := o.openDir()
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return d, nil
	}
	u, err := objstore.ParseURL(o.Dir)
	if err != nil {
		return nil, err
	}
	b, err := o.Bucket.open(ctx, u)
	if err != nil {
		return nil, err
	}
	// Its writes end with the lease, not at SIGTERM (see Run).
	wctx := o.writeCtx
	if wctx == nil {
		wctx = ctx
	}
	d, err := bucket.Open(wctx, b, u.Prefix, o.Timestamps)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// exportOptions are the export settings of the flags, for the destination --dir names.
func (o *Options) exportOptions() export.Options {
	opts := export.Options{Timestamps: o.Timestamps, Since: o.since, ResumeTail: o.ResumeTail}
	if o.toBucket() {
		// A segment is held in memory until it is put.
		opts.CommitBytes = bucket.SegmentBytes
	}
	return opts
}

// closeDest closes the destination and makes its error the run's if the run had none: closing
// a directory syncs the last renames, and a failure there means the export may not survive a
// crash.
func closeDest(d destination, err *error) {
	if cerr := d.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("closing the destination: %w", cerr)
	}
}

// logLocation is where a container's log goes, for the dry run.
func (o *Options) logLocation(namespace, pod, container string) (string, error) {
	rel, err := store.LogPath(namespace, pod, container)
	if err != nil {
		return "", err
	}
	if o.toBucket() {
		u, err := objstore.ParseURL(o.Dir)
		if err != nil {
			return "", err
		}
		return bucket.LogURL(u, namespace, pod, container), nil
	}
	return filepath.Join(o.Dir, filepath.FromSlash(rel)), nil
}

// bucketFlags connect to a bucket. Credentials come from the AWS credential chain only (the
// environment, the shared files, a web identity, the instance's role): never from a flag,
// where they would show in the process list and the shell history.
type bucketFlags struct {
	Endpoint string
	Region   string
	// connect, if set, replaces the S3 client (tests).
	connect func(ctx context.Context, u objstore.URL) (objstore.Bucket, error)
}

// AddFlags adds the bucket flags.
func (f *bucketFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Endpoint, "s3-endpoint", "", "Endpoint of an S3-compatible server for s3:// destinations, with path-style requests (default: $AWS_ENDPOINT_URL, else AWS)")
	fs.StringVar(&f.Region, "s3-region", "", "Region of the bucket for s3:// destinations (default: $AWS_REGION, the AWS config, else us-east-1)")
}

func (f *bucketFlags) open(ctx context.Context, u objstore.URL) (objstore.Bucket, error) {
	if f.connect != nil {
		return f.connect(ctx, u)
	}
	b, err := objstore.NewS3(ctx, u, objstore.S3Config{Endpoint: f.Endpoint, Region: f.Region})
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return b, nil
}
