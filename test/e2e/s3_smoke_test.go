package e2e

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// The S3 server answers the requests the bucket export is built on, signed as an AWS SDK signs
// them: put, get, a put that only creates (If-None-Match: *), ordered listing by prefix with
// start-after and paging, delete.
func TestS3Server(t *testing.T) {
	s := s3(t)
	ctx := context.Background()
	do := func(want int, method, url, body string, headers ...string) string {
		t.Helper()
		res, err := s.request(ctx, method, url, body, headers...)
		if err != nil {
			t.Fatal(err)
		}
		if res.code != want {
			t.Fatalf("%s %s: status %d, want %d\n%s", method, url, res.code, want, res.body)
		}
		return res.body
	}
	// A prefix of its own: the bucket is shared by the package's tests.
	p := "smoke-" + randID() + "/"
	put := func(want int, key, body string, headers ...string) {
		t.Helper()
		do(want, http.MethodPut, s.url(p+key), body, headers...)
	}
	get := func(key string) string { t.Helper(); return do(http.StatusOK, http.MethodGet, s.url(p+key), "") }

	put(http.StatusOK, "b", "first b\n")
	if got := get("b"); got != "first b\n" {
		t.Fatalf("get b: %q", got)
	}
	do(http.StatusNotFound, http.MethodGet, s.url(p+"missing"), "")

	// The fence: a create-only put of an existing key is refused and leaves the object as it was.
	put(http.StatusPreconditionFailed, "b", "second b\n", "If-None-Match: *")
	if got := get("b"); got != "first b\n" {
		t.Fatalf("get b after a refused conditional put: %q", got)
	}
	put(http.StatusOK, "a", "a\n", "If-None-Match: *")
	put(http.StatusOK, "c", "c\n")
	put(http.StatusOK, "d/e", "e\n")

	list := func(params map[string]string) listBucketResult {
		t.Helper()
		params["list-type"] = "2"
		var r listBucketResult
		body := do(http.StatusOK, http.MethodGet, s.url("")+"?"+sigv4Query(params), "")
		if err := xml.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("decoding the listing: %v\n%s", err, body)
		}
		return r
	}
	keys := func(r listBucketResult) string {
		var ks []string
		for _, c := range r.Contents {
			ks = append(ks, strings.TrimPrefix(c.Key, p))
		}
		return strings.Join(ks, ",")
	}
	tests := []struct {
		name      string
		params    map[string]string
		want      string
		truncated bool
	}{
		{"all, in key order", map[string]string{"prefix": p}, "a,b,c,d/e", false},
		{"after a key", map[string]string{"prefix": p, "start-after": p + "b"}, "c,d/e", false},
		{"one page", map[string]string{"prefix": p, "max-keys": "3"}, "a,b,c", true},
		{"deeper prefix", map[string]string{"prefix": p + "d/"}, "d/e", false},
	}
	for _, tt := range tests {
		r := list(tt.params)
		if keys(r) != tt.want || r.IsTruncated != tt.truncated {
			t.Fatalf("%s: keys %q truncated %v, want %q truncated %v", tt.name, keys(r), r.IsTruncated, tt.want, tt.truncated)
		}
	}
	// The next page follows from the continuation token.
	first := list(map[string]string{"prefix": p, "max-keys": "3"})
	next := list(map[string]string{"prefix": p, "max-keys": "3", "continuation-token": first.NextContinuationToken})
	if first.NextContinuationToken == "" || keys(next) != "d/e" || next.IsTruncated {
		t.Fatalf("next page after token %q: keys %q truncated %v", first.NextContinuationToken, keys(next), next.IsTruncated)
	}

	do(http.StatusNoContent, http.MethodDelete, s.url(p+"a"), "")
	do(http.StatusNotFound, http.MethodGet, s.url(p+"a"), "")
	if got := keys(list(map[string]string{"prefix": p})); got != "b,c,d/e" {
		t.Fatalf("keys after deleting a: %q", got)
	}
}

type listBucketResult struct {
	Contents []struct {
		Key string
	}
	IsTruncated           bool
	NextContinuationToken string
}

// sigv4Query encodes params as SigV4 signs a query (sorted, %20 for space, ~ as is): curl signs the
// query it is given as it is.
func sigv4Query(params map[string]string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	esc := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"), "%7E", "~")
	}
	var parts []string
	for _, k := range names {
		parts = append(parts, esc(k)+"="+esc(params[k]))
	}
	return strings.Join(parts, "&")
}
