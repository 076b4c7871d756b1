// Package objstore is the little the export needs of an object store (S3 and S3-compatible
// servers): whole objects put, got, listed in key order and deleted, and a put that only creates.
// Objects cannot be appended to, so a log in a bucket is a sequence of immutable objects (see
// pkg/bucket); this package knows nothing of logs.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound is wrapped by Get of a key that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is wrapped by a Put with IfAbsent of a key that exists (HTTP 412).
	ErrExists = errors.New("already exists")
	// ErrChanged is wrapped by a Put with IfMatch of a key that another write changed (or
	// removed) since the version it names (HTTP 412, or 404).
	ErrChanged = errors.New("changed by another writer")
)

// Object is a listed object.
type Object struct {
	Key  string
	Size int64
}

// PutOptions qualify a Put.
type PutOptions struct {
	// IfAbsent makes the Put create the object only if no object has its key (If-None-Match: *),
	// failing with ErrExists otherwise: the bucket's own compare-and-swap.
	IfAbsent bool
	// IfMatch makes the Put replace the object only while its ETag is this (If-Match), failing
	// with ErrChanged otherwise: a writer that read a version overwrites only that version.
	IfMatch     string
	ContentType string
}

// Bucket is an object store bucket. Keys are relative to the bucket. Safe for concurrent use.
type Bucket interface {
	Put(ctx context.Context, key string, body []byte, opts PutOptions) error
	Get(ctx context.Context, key string) ([]byte, error)
	// GetETag is Get with the object's ETag, and PutETag is Put with the new object's: what
	// IfMatch takes.
	GetETag(ctx context.Context, key string) (body []byte, etag string, err error)
	PutETag(ctx context.Context, key string, body []byte, opts PutOptions) (etag string, err error)
	// List calls fn for each object whose key has prefix and sorts after startAfter ("" for
	// all), in key order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix, startAfter string, fn func(Object) error) error
	// Delete removes key; a key that does not exist is not an error.
	Delete(ctx context.Context, key string) error
	// String names the bucket in messages, as s3://BUCKET.
	String() string
}

// URL is a destination in a bucket: s3://BUCKET/PREFIX.
type URL struct {
	Scheme string
	Bucket string
	// Prefix is the key prefix, without leading or trailing slashes ("" for the whole bucket).
	Prefix string
}

func (u URL) String() string {
	if u.Prefix == "" {
		return u.Scheme + "://" + u.Bucket
	}
	return u.Scheme + "://" + u.Bucket + "/" + u.Prefix
}

// Schemes are the URL schemes a destination may have.
var Schemes = []string{"s3"}

// IsURL tells a bucket URL from a local path: it has a scheme followed by "://".
func IsURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for _, c := range s[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// ParseURL parses s3://BUCKET[/PREFIX].
func ParseURL(s string) (URL, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !IsURL(s) {
		return URL{}, fmt.Errorf("%q is not a bucket URL (s3://BUCKET/PREFIX)", s)
	}
	scheme = strings.ToLower(scheme)
	known := false
	for _, k := range Schemes {
		known = known || scheme == k
	}
	if !known {
		return URL{}, fmt.Errorf("%q: unsupported scheme %q (supported: %s)", s, scheme, strings.Join(Schemes, ", "))
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return URL{}, fmt.Errorf("%q has no bucket name (s3://BUCKET/PREFIX)", s)
	}
	prefix = strings.Trim(prefix, "/")
	for _, part := range strings.Split(prefix, "/") {
		if prefix != "" && (part == "" || part == "." || part == "..") {
			return URL{}, fmt.Errorf("%q: the prefix must not have empty, . or .. parts", s)
		}
	}
	return URL{Scheme: scheme, Bucket: bucket, Prefix: prefix}, nil
}
