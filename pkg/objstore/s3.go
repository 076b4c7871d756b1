package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The failures a user must act on, besides ErrNotFound and ErrExists; S3 errors wrap one of them
// and keep the SDK's error in the chain.
var (
	ErrNoCredentials = errors.New("no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run with a web identity (IRSA), EKS Pod Identity or an instance role)")
	ErrNoBucket      = errors.New("the bucket does not exist")
	ErrAccessDenied  = errors.New("access denied (check the credentials, their permissions on the bucket, and the region)")
	ErrUnreachable   = errors.New("the S3 endpoint cannot be reached")
)

// S3Config overrides what the AWS environment says; the zero value takes everything from it: the
// endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (or the profile's), the region from
// AWS_REGION, AWS_DEFAULT_REGION or the profile, credentials from the SDK's default chain
// (environment, shared config and credentials files with AWS_PROFILE, SSO, web identity, EKS Pod
// Identity, ECS, EC2 instance role).
type S3Config struct {
	// Endpoint is the URL of an S3-compatible server, e.g. http://localhost:8333.
	Endpoint string
	// Region defaults to us-east-1 for a custom endpoint; AWS itself needs one.
	Region string
	// PathStyle addresses the bucket in the path (http://host/BUCKET/KEY) rather than in the host
	// name; nil means path-style exactly when a custom endpoint is set, as S3-compatible servers
	// rarely have per-bucket host names.
	PathStyle *bool
	// Profile names a profile of the shared config files instead of AWS_PROFILE.
	Profile string
	// ListPageSize is the number of keys a list request asks for (0 for the server's default,
	// 1000 on AWS); tests set it small to go through many pages.
	ListPageSize int32
}

// S3 is a Bucket in S3 or an S3-compatible server.
type S3 struct {
	client   *s3.Client
	bucket   string
	endpoint string // for messages: the custom endpoint, or "" for AWS
	pageSize int32
}

// NewS3 returns the bucket of u. It checks the configuration but sends no request: the first
// operation tells whether the bucket exists and the credentials are good.
func NewS3(ctx context.Context, u URL, cfg S3Config) (*S3, error) {
	if u.Scheme != "s3" || u.Bucket == "" {
		return nil, fmt.Errorf("%s is not an s3://BUCKET URL", u)
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = markedCredentials{awsCfg.Credentials}
	}
	var resolveErr error
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		// Run after the SDK has resolved AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL and the profile's
		// endpoint into BaseEndpoint.
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		custom := o.BaseEndpoint != nil && *o.BaseEndpoint != ""
		if custom {
			if err := checkEndpoint(*o.BaseEndpoint); err != nil {
				resolveErr = err
			}
			if o.Region == "" {
				o.Region = "us-east-1"
			}
			// S3-compatible servers do not all know the flexible checksums the SDK sends by
			// default since 2025: unless told otherwise, send them only where required.
			if awsCfg.RequestChecksumCalculation == 0 {
				o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			}
			if awsCfg.ResponseChecksumValidation == 0 {
				o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			}
		}
		// AWS answers a conditional put that races another write to the key with 409
		// ConditionalRequestConflict and asks for a retry.
		o.Retryer = retry.AddWithErrorCodes(o.Retryer, "ConditionalRequestConflict")
		o.UsePathStyle = custom
		if cfg.PathStyle != nil {
			o.UsePathStyle = *cfg.PathStyle
		}
	})
	if resolveErr != nil {
		return nil, resolveErr
	}
	o := client.Options()
	if o.Region == "" {
		return nil, fmt.Errorf("%s: no AWS region: set AWS_REGION, a region in the profile, or a custom endpoint", u)
	}
	b := &S3{client: client, bucket: u.Bucket, pageSize: cfg.ListPageSize}
	if o.BaseEndpoint != nil {
		b.endpoint = *o.BaseEndpoint
	}
	return b, nil
}

func checkEndpoint(s string) error {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("S3 endpoint %q: want a URL such as https://host or http://host:port", s)
	}
	return nil
}

func (b *S3) Put(ctx context.Context, key string, body []byte, opts PutOptions) error {
	_, err := b.PutETag(ctx, key, body, opts)
	return err
}

func (b *S3) PutETag(ctx context.Context, key string, body []byte, opts PutOptions) (string, error) {
	in := &s3.PutObjectInput{Bucket: &b.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}
	if opts.ContentType != "" {
		in.ContentType = &opts.ContentType
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = &opts.IfMatch
	}
	out, err := b.client.PutObject(ctx, in)
	if err != nil {
		err = b.fail("putting", key, err)
		if opts.IfMatch != "" && (errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound)) {
			err = fmt.Errorf("%w: %w", ErrChanged, err)
		}
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func (b *S3) Get(ctx context.Context, key string) ([]byte, error) {
	data, _, err := b.GetETag(ctx, key)
	return data, err
}

func (b *S3) GetETag(ctx context.Context, key string) ([]byte, string, error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return nil, "", b.fail("getting", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", b.fail("getting", key, err)
	}
	return data, aws.ToString(out.ETag), nil
}

// List goes page by page, each page starting after the last key of the one before: that is the
// whole of the paging state, so no server's continuation tokens are relied on.
func (b *S3) List(ctx context.Context, prefix, startAfter string, fn func(Object) error) error {
	last := startAfter
	for {
		in := &s3.ListObjectsV2Input{Bucket: &b.bucket}
		if prefix != "" {
			in.Prefix = &prefix
		}
		if last != "" {
			in.StartAfter = &last
		}
		if b.pageSize > 0 {
			in.MaxKeys = &b.pageSize
		}
		out, err := b.client.ListObjectsV2(ctx, in)
		if err != nil {
			return b.fail("listing", prefix, err)
		}
		for _, o := range out.Contents {
			key := aws.ToString(o.Key)
			// Callers rely on the order (and on each key once); a server that lists otherwise
			// must fail loudly rather than have a segment skipped or read twice.
			if key <= last || !strings.HasPrefix(key, prefix) {
				return fmt.Errorf("listing %s: the server listed %q after %q (want keys under %q in increasing order)", b.where(prefix), key, last, prefix)
			}
			last = key
			if err := fn(Object{Key: key, Size: aws.ToInt64(o.Size)}); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		if len(out.Contents) == 0 {
			// Truncated without a key (only common prefixes, which we never ask for): the next
			// page would start where this one did.
			return fmt.Errorf("listing %s: the server returned an empty truncated page", b.where(prefix))
		}
	}
}

func (b *S3) Delete(ctx context.Context, key string) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		err = b.fail("deleting", key, err)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

func (b *S3) String() string { return "s3://" + b.bucket }

func (b *S3) where(key string) string {
	if key == "" {
		return b.String()
	}
	return b.String() + "/" + key
}

// fail turns an SDK error into one line that says what to do, wrapping the matching Err* and the
// SDK's error.
func (b *S3) fail(op, key string, err error) error {
	kind := classify(err)
	if kind == nil {
		return fmt.Errorf("%s %s: %w", op, b.where(key), err)
	}
	e := &s3Error{op: op, where: b.where(key), kind: kind, err: err}
	switch kind {
	case ErrNoBucket:
		e.detail = "bucket " + b.bucket + " does not exist"
		if b.endpoint != "" {
			e.detail += " at " + b.endpoint
		}
	case ErrUnreachable:
		e.detail = "cannot reach the S3 endpoint"
		if b.endpoint != "" {
			e.detail += " " + b.endpoint
		}
		var op *net.OpError
		var dns *net.DNSError
		if errors.As(err, &dns) {
			e.detail += ": " + dns.Error()
		} else if errors.As(err, &op) && op.Err != nil {
			e.detail += ": " + op.Err.Error()
		}
	default:
		var ae smithy.APIError
		if errors.As(err, &ae) {
			e.code = ae.ErrorCode()
		}
	}
	return e
}

// classify returns the Err* that err is an instance of, or nil.
func classify(err error) error {
	var creds *credentialsError
	if errors.As(err, &creds) {
		return ErrNoCredentials
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return ErrUnreachable
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return ErrUnreachable
	}
	code, status := "", 0
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchBucket":
		return ErrNoBucket
	case code == "NoSuchKey" || code == "NotFound" || status == http.StatusNotFound && code == "":
		return ErrNotFound
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return ErrExists
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
		code == "AllAccessDisabled" || code == "InvalidToken" || code == "ExpiredToken" || status == http.StatusForbidden:
		return ErrAccessDenied
	}
	return nil
}

// s3Error reads as one line: what was done to which key, what went wrong and, for the API's
// answers, its error code; errors.Is finds both the Err* and the SDK's error.
type s3Error struct {
	op, where string
	kind      error
	detail    string // instead of kind's text
	code      string
	err       error
}

func (e *s3Error) Error() string {
	msg := e.detail
	if msg == "" {
		msg = e.kind.Error()
	}
	if e.kind == ErrNoCredentials {
		// The chain's own message says what each provider lacked: useful with -v, noise here.
		return e.op + " " + e.where + ": " + msg
	}
	if e.code != "" {
		msg += " (" + e.code + ")"
	}
	return e.op + " " + e.where + ": " + msg
}

func (e *s3Error) Unwrap() []error { return []error{e.kind, e.err} }

// markedCredentials marks the failures of the credential chain, which the SDK reports with no type
// of their own.
type markedCredentials struct{ aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err}
	}
	return c, nil
}

type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }
