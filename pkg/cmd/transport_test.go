package cmd

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
)

// TestLogRequestsProtocol runs log requests against a TLS server that offers HTTP/2: a one-shot
// run must read them over HTTP/1.1 and keep a connection for each of --max-log-requests (beyond
// client-go's 25), a follower over HTTP/2. A CA file each: client-go shares a transport between
// configurations with the same TLS settings.
func TestLogRequestsProtocol(t *testing.T) {
	tests := []struct {
		name     string
		follow   bool
		insecure bool // --insecure-skip-tls-verify rather than --certificate-authority
		requests int  // --max-log-requests
		want     string
		// idle is the transport's MaxIdleConnsPerHost, from client-go's 25.
		idle int
	}{
		{name: "one-shot", requests: 40, want: "1", idle: 42},
		{name: "one-shot, insecure", insecure: true, requests: 40, want: "1", idle: 42},
		{name: "one-shot, few requests", requests: 3, want: "1", idle: 25},
		{name: "follow", follow: true, requests: 40, want: "2", idle: 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, strconv.Itoa(r.ProtoMajor))
			}))
			srv.EnableHTTP2 = true
			srv.StartTLS()
			defer srv.Close()
			ca := filepath.Join(t.TempDir(), "ca.crt")
			if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
				t.Fatal(err)
			}
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			o := NewOptions(streams)
			*o.configFlags.APIServer = srv.URL
			if tt.insecure {
				*o.configFlags.Insecure = true
			} else {
				*o.configFlags.CAFile = ca
			}
			o.Follow, o.MaxLogRequests = tt.follow, tt.requests
			client, err := o.clientset()
			if err != nil {
				t.Fatal(err)
			}
			b, err := client.CoreV1().Pods("ns").GetLogs("p", &corev1.PodLogOptions{}).DoRaw(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("served over HTTP/%s, want HTTP/%s", b, tt.want)
			}
			config, err := o.restConfig()
			if err != nil {
				t.Fatal(err)
			}
			// The transport client-go builds for it, under the wrappers of its cache and of
			// the CA file's rotation.
			rt, err := rest.TransportFor(config)
			if err != nil {
				t.Fatal(err)
			}
			for {
				w, ok := rt.(utilnet.RoundTripperWrapper)
				if !ok {
					break
				}
				rt = w.WrappedRoundTripper()
			}
			tr, ok := rt.(*http.Transport)
			if !ok {
				t.Fatalf("client-go's transport is a %T under its wrappers", rt)
			}
			if tr.MaxIdleConnsPerHost != tt.idle {
				t.Errorf("MaxIdleConnsPerHost = %d, want %d", tr.MaxIdleConnsPerHost, tt.idle)
			}
		})
	}
}
