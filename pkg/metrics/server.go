package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// Handler serves /metrics from g, and /healthz and /readyz from h as the Kubernetes components
// do: 200 "ok", or 503 with the reason.
func Handler(g prometheus.Gatherer, h *Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	probe := func(check func() error) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if err := check(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err)
				return
			}
			fmt.Fprint(w, "ok")
		}
	}
	mux.Handle("/healthz", probe(h.Healthy))
	mux.Handle("/readyz", probe(h.Ready))
	return mux
}

// Server is an HTTP server on an address of its own.
type Server struct {
	srv  *http.Server
	l    net.Listener
	done chan error
}

// Listen listens on addr (host:port; port 0 picks a free one): before anything else starts, so
// that a bad or busy address fails the run at once.
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serving metrics: %w", err)
	}
	return l, nil
}

// Serve serves handler on l until Shutdown.
func Serve(l net.Listener, handler http.Handler) *Server {
	s := &Server{srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}, l: l, done: make(chan error, 1)}
	go func() {
		err := s.srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	klog.V(1).InfoS("serving metrics and probes", "address", l.Addr().String())
	return s
}

// Addr is the address it listens on.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Shutdown stops accepting and waits for the requests under way, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stopping the metrics server: %w", err)
	}
	if err := <-s.done; err != nil {
		return fmt.Errorf("serving metrics: %w", err)
	}
	return nil
}
