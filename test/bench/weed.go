package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/logexport/kubectl-logexport/test/seaweed"
)

// weedServer is the S3 server the bucket contender exports into: a SeaweedFS `weed mini` (see
// test/seaweed, as the e2e tests start it), with one bucket. One per benchmark run: its start-up
// (seconds) is not charged to any contender.
type weedServer struct {
	*seaweed.Server
}

// startWeed starts weed from toolsBin and waits until its bucket answers through s3objects, the
// plugin's own S3 client.
func startWeed(toolsBin, s3objects string) (*weedServer, error) {
	s, err := seaweed.Start(filepath.Join(toolsBin, "weed"), "bench", "bench", 2*time.Minute, func(ctx context.Context, s *seaweed.Server) error {
		ready := exec.CommandContext(ctx, s3objects, "ready", "s3://"+s.Bucket)
		ready.Env, ready.Stderr = append(os.Environ(), s.Env()...), os.Stderr
		return ready.Run()
	})
	if err != nil {
		return nil, err
	}
	return &weedServer{s}, nil
}

// cpu is the CPU time (user+system) weed has used so far, from /proc: the bucket contender's
// server-side cost, read before and after each of its runs.
func (s *weedServer) cpu() (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", s.PID())
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	d, err := statCPU(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// statCPU reads utime and stime, fields 14 and 15 of proc(5)'s /proc/PID/stat, in clock ticks
// of 1/100 s (USER_HZ).
func statCPU(stat string) (time.Duration, error) {
	// The command name, in parentheses, may hold spaces and parentheses: fields count from
	// after the last ')'. The first after it is field 3, the state.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("too few fields in %q", stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("utime and stime are not numbers in %q", stat)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
