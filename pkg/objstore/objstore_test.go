package objstore

import (
	"context"
	"errors"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    URL
		wantErr bool
	}{
		{in: "s3://logs", want: URL{Scheme: "s3", Bucket: "logs"}},
		{in: "s3://logs/", want: URL{Scheme: "s3", Bucket: "logs"}},
		{in: "S3://logs/a/b/", want: URL{Scheme: "s3", Bucket: "logs", Prefix: "a/b"}},
		{in: "s3:///a", wantErr: true},
		{in: "gs://logs", wantErr: true},
		{in: "s3://logs/a//b", wantErr: true},
		{in: "s3://logs/a/../b", wantErr: true},
		{in: "logs", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseURL(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("ParseURL(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsURL(t *testing.T) {
	for in, want := range map[string]bool{
		"s3://b/p": true, "S3://b": true, "./logs": false, "/var/log": false, "C:\\logs": false,
		"logs/s3://x": false, "://x": false,
	} {
		if got := IsURL(in); got != want {
			t.Errorf("IsURL(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestMemory(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	for _, k := range []string{"a/2", "a/1", "b/1", "a/3"} {
		if err := m.Put(ctx, k, []byte(k), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Put(ctx, "a/1", nil, PutOptions{IfAbsent: true}); !errors.Is(err, ErrExists) {
		t.Errorf("conditional put over a/1: %v, want ErrExists", err)
	}
	var keys []string
	if err := m.List(ctx, "a/", "a/1", func(o Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "a/2" || keys[1] != "a/3" {
		t.Errorf("List(a/, after a/1) = %v, want [a/2 a/3]", keys)
	}
	if err := m.Delete(ctx, "a/2"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "a/2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a deleted key: %v, want ErrNotFound", err)
	}
	if err := m.Delete(ctx, "a/2"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
}
