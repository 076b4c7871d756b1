package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// clearAWSEnv keeps the machine's AWS configuration out of a test.
func clearAWSEnv(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
		t.Setenv(k, "")
		os.Unsetenv(k) // t.Setenv restores it
	}
}

func TestNewS3Config(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name         string
		env          map[string]string
		config       string // shared config file
		cfg          S3Config
		wantEndpoint string
		wantRegion   string
		wantPath     bool
		wantErr      string
	}{
		{name: "AWS needs a region", wantErr: "no AWS region"},
		{name: "AWS, region from AWS_REGION", env: map[string]string{"AWS_REGION": "eu-west-1"}, wantRegion: "eu-west-1"},
		{name: "AWS_REGION over AWS_DEFAULT_REGION", env: map[string]string{"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}, wantRegion: "eu-west-1"},
		{name: "AWS_DEFAULT_REGION", env: map[string]string{"AWS_DEFAULT_REGION": "us-west-2"}, wantRegion: "us-west-2"},
		{name: "flag over env", env: map[string]string{"AWS_REGION": "eu-west-1"}, cfg: S3Config{Region: "ap-south-1"}, wantRegion: "ap-south-1"},
		{name: "region from the profile", config: "[profile p]\nregion = ca-central-1\n", env: map[string]string{"AWS_PROFILE": "p"}, wantRegion: "ca-central-1"},
		{name: "profile from the config", config: "[profile p]\nregion = ca-central-1\n", cfg: S3Config{Profile: "p"}, wantRegion: "ca-central-1"},
		{name: "endpoint from AWS_ENDPOINT_URL: path-style, us-east-1", env: map[string]string{"AWS_ENDPOINT_URL": "http://h:1"},
			wantEndpoint: "http://h:1", wantRegion: "us-east-1", wantPath: true},
		{name: "AWS_ENDPOINT_URL_S3 over AWS_ENDPOINT_URL", env: map[string]string{"AWS_ENDPOINT_URL": "http://h:1", "AWS_ENDPOINT_URL_S3": "http://s3:2"},
			wantEndpoint: "http://s3:2", wantRegion: "us-east-1", wantPath: true},
		{name: "endpoint flag over env", env: map[string]string{"AWS_ENDPOINT_URL": "http://h:1", "AWS_REGION": "r1"}, cfg: S3Config{Endpoint: "https://f"},
			wantEndpoint: "https://f", wantRegion: "r1", wantPath: true},
		{name: "endpoint from the profile", config: "[profile p]\nendpoint_url = http://p:3\n", cfg: S3Config{Profile: "p"},
			wantEndpoint: "http://p:3", wantRegion: "us-east-1", wantPath: true},
		{name: "virtual-hosted on request", cfg: S3Config{Endpoint: "http://h:1", PathStyle: &no}, wantEndpoint: "http://h:1", wantRegion: "us-east-1"},
		{name: "path-style on AWS on request", env: map[string]string{"AWS_REGION": "eu-west-1"}, cfg: S3Config{PathStyle: &yes}, wantRegion: "eu-west-1", wantPath: true},
		{name: "endpoint without scheme", cfg: S3Config{Endpoint: "localhost:8333"}, wantErr: "want a URL"},
		{name: "unknown profile", cfg: S3Config{Profile: "nope"}, wantErr: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAWSEnv(t)
			if tt.config != "" {
				f := filepath.Join(t.TempDir(), "config")
				if err := os.WriteFile(f, []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Setenv("AWS_CONFIG_FILE", f)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			b, err := NewS3(context.Background(), URL{Scheme: "s3", Bucket: "b"}, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewS3: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o := b.client.Options()
			endpoint := ""
			if o.BaseEndpoint != nil {
				endpoint = *o.BaseEndpoint
			}
			if endpoint != tt.wantEndpoint || o.Region != tt.wantRegion || o.UsePathStyle != tt.wantPath {
				t.Errorf("endpoint %q, region %q, path-style %v; want %q, %q, %v", endpoint, o.Region, o.UsePathStyle, tt.wantEndpoint, tt.wantRegion, tt.wantPath)
			}
		})
	}
}

// TestS3ErrorMapping answers each request with a canned S3 error and checks what it becomes.
func TestS3ErrorMapping(t *testing.T) {
	tests := []struct {
		status int
		code   string
		op     string
		want   error // nil: no Err* of the package, nor a nil error
		wantOK bool
	}{
		{status: 404, code: "NoSuchKey", op: "get", want: ErrNotFound},
		{status: 404, code: "NoSuchBucket", op: "get", want: ErrNoBucket},
		{status: 404, code: "NoSuchBucket", op: "list", want: ErrNoBucket},
		{status: 404, code: "NoSuchKey", op: "delete", wantOK: true},
		{status: 412, code: "PreconditionFailed", op: "put", want: ErrExists},
		{status: 403, code: "AccessDenied", op: "put", want: ErrAccessDenied},
		{status: 403, code: "InvalidAccessKeyId", op: "list", want: ErrAccessDenied},
		{status: 400, code: "InvalidArgument", op: "put"},
		{status: 501, code: "NotImplemented", op: "put"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d %s", tt.op, tt.status, tt.code), func(t *testing.T) {
			clearAWSEnv(t)
			t.Setenv("AWS_ACCESS_KEY_ID", "k")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>canned</Message></Error>`, tt.code)
			}))
			defer srv.Close()
			b, err := NewS3(context.Background(), URL{Scheme: "s3", Bucket: "b"}, S3Config{Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			switch tt.op {
			case "get":
				_, err = b.Get(ctx, "k")
			case "put":
				err = b.Put(ctx, "k", []byte("v"), PutOptions{IfAbsent: true})
			case "list":
				err = b.List(ctx, "", "", func(Object) error { return nil })
			case "delete":
				err = b.Delete(ctx, "k")
			}
			if tt.wantOK {
				if err != nil {
					t.Fatalf("%s: %v, want nil", tt.op, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: nil error", tt.op)
			}
			for _, e := range []error{ErrNotFound, ErrExists, ErrNoBucket, ErrAccessDenied, ErrNoCredentials, ErrUnreachable} {
				if errors.Is(err, e) != (e == tt.want) {
					t.Errorf("%s: %v: errors.Is(%v) = %v", tt.op, err, e, !(e == tt.want))
				}
			}
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "s3://b") {
				t.Errorf("%s: %q, want one line naming the bucket", tt.op, err)
			}
		})
	}
}

// TestS3ListChecksOrder: a server that lists a key again or out of order must fail the listing,
// not have the caller skip or repeat an object.
func TestS3ListChecksOrder(t *testing.T) {
	clearAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	for name, keys := range map[string][]string{
		"repeated":        {"a", "b", "b"},
		"backwards":       {"a", "c", "b"},
		"outside":         {"a", "x/b"},
		"not after start": {"0"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var contents strings.Builder
				for _, k := range keys {
					fmt.Fprintf(&contents, "<Contents><Key>%s</Key><Size>1</Size></Contents>", k)
				}
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated>%s</ListBucketResult>`, contents.String())
			}))
			defer srv.Close()
			b, err := NewS3(context.Background(), URL{Scheme: "s3", Bucket: "b"}, S3Config{Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			prefix, after := "", ""
			if name == "outside" {
				prefix = "a"
			}
			if name == "not after start" {
				after = "0"
			}
			err = b.List(context.Background(), prefix, after, func(Object) error { return nil })
			if err == nil || !strings.Contains(err.Error(), "increasing order") {
				t.Errorf("List of %v: %v, want an order error", keys, err)
			}
		})
	}
}

// AWS answers a conditional put that races another write with 409 ConditionalRequestConflict and
// asks for a retry; the retry's answer decides.
func TestS3RetriesConditionalConflict(t *testing.T) {
	clearAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	for _, then := range []int{200, 412} {
		t.Run(fmt.Sprint(then), func(t *testing.T) {
			var puts int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				puts++
				if puts == 1 {
					w.WriteHeader(409)
					fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict</Code></Error>`)
					return
				}
				w.WriteHeader(then)
				if then == 412 {
					fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code></Error>`)
				}
			}))
			defer srv.Close()
			b, err := NewS3(context.Background(), URL{Scheme: "s3", Bucket: "b"}, S3Config{Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			err = b.Put(context.Background(), "k", []byte("v"), PutOptions{IfAbsent: true})
			if puts != 2 || (then == 200) != (err == nil) || (then == 412) != errors.Is(err, ErrExists) {
				t.Errorf("after a 409 then %d: %d puts, %v", then, puts, err)
			}
		})
	}
}
