package bucket_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/bucket"
	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/test/logserver"
	"github.com/logexport/kubectl-logexport/test/peakmem"
)

// sizes is a bucket that keeps only its objects' sizes: the benchmark measures the export's
// memory, not the fake's.
type sizes struct {
	mu  sync.Mutex
	obj map[string]int64
}

func (s *sizes) Put(_ context.Context, key string, body []byte, _ objstore.PutOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.obj[key] = int64(len(body))
	return nil
}

func (s *sizes) PutETag(ctx context.Context, key string, body []byte, opts objstore.PutOptions) (string, error) {
	return fmt.Sprint(len(body)), s.Put(ctx, key, body, opts)
}

func (s *sizes) Get(_ context.Context, key string) ([]byte, error) {
	return nil, fmt.Errorf("getting %s: %w", key, objstore.ErrNotFound)
}

func (s *sizes) GetETag(ctx context.Context, key string) ([]byte, string, error) {
	b, err := s.Get(ctx, key)
	return b, "", err
}

func (s *sizes) List(context.Context, string, string, func(objstore.Object) error) error { return nil }
func (s *sizes) Delete(context.Context, string) error                                    { return nil }
func (s *sizes) String() string                                                          { return "sizes://bucket" }

// BenchmarkFirstExportHeap exports one container's log of BUCKET_BENCH_MIB MiB (default 128)
// at once, into a directory and into a bucket, and reports the peak live heap of each: a
// bucket's log holds what it has not committed in memory (SegmentBytes, the command's CommitBytes).
// Compare the two (peak-heap-MiB) as a ratio.
func BenchmarkFirstExportHeap(b *testing.B) {
	mib := 128
	if s := os.Getenv("BUCKET_BENCH_MIB"); s != "" {
		mib, _ = strconv.Atoi(s)
	}
	srv := logserver.New(b)
	srv.AddPod("default", "p0", "c")
	now := time.Date(2024, 3, 9, 12, 0, 0, 0, time.UTC)
	text := strings.Repeat("x", 200)
	var entries []logserver.Entry
	for i := 0; i < mib<<20/(len(text)+40); i++ {
		entries = append(entries, logserver.Entry{Time: now.Add(time.Duration(i) * time.Millisecond), Text: strconv.Itoa(i) + text})
		if len(entries) == 10000 {
			srv.Append("default", "p0", "c", entries...)
			entries = entries[:0]
		}
	}
	srv.Append("default", "p0", "c", entries...)
	client := srv.Client()
	ctx := context.Background()
	tgt := target.Of(srv.Pod("default", "p0"), "c")
	for _, dest := range []string{"dir", "bucket"} {
		b.Run(dest, func(b *testing.B) {
			b.SetBytes(int64(mib) << 20)
			var peak uint64
			for range b.N {
				var d store.Destination
				var opts export.Options
				if dest == "dir" {
					dir, err := store.Open(b.TempDir(), false)
					if err != nil {
						b.Fatal(err)
					}
					defer dir.Close()
					d = dir
				} else {
					bd, err := bucket.Open(ctx, &sizes{obj: map[string]int64{}}, "logs", false)
					if err != nil {
						b.Fatal(err)
					}
					d = bd
					opts.CommitBytes = bucket.SegmentBytes
				}
				runtime.GC()
				stop := peakmem.Start("/memory/classes/heap/objects:bytes")
				res := (&export.Exporter{Client: client, Dest: d, Options: opts}).Export(ctx, tgt)
				p := stop()
				if res.Err != nil {
					b.Fatal(res.Err)
				}
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
