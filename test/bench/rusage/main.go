//go:build unix

// Command rusage runs a command and reports its peak RSS and CPU time, as /usr/bin/time does.
//
//	rusage FILE COMMAND [ARG...]
//
// The benchmark cannot read these from its own children: Linux carries the high-water RSS of the
// forking process across exec, so every child of a 40 MiB benchmark would report at least 40 MiB.
// This program is small enough (a few MiB) that its own size does not hide the child's.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: rusage FILE COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// SIGINT and SIGTERM are the command's: a follower is stopped through this program.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "rusage: %v\n", err)
		os.Exit(127)
	}
	go func() {
		for sig := range sigs {
			_ = cmd.Process.Signal(sig)
		}
	}()
	err := cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		fmt.Fprintf(os.Stderr, "rusage: %v\n", err)
		os.Exit(127)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	// maxrss in KiB, then user and system CPU in microseconds.
	report := fmt.Sprintf("%d %d %d\n", ru.Maxrss,
		ru.Utime.Sec*1e6+int64(ru.Utime.Usec), ru.Stime.Sec*1e6+int64(ru.Stime.Usec))
	if werr := os.WriteFile(os.Args[1], []byte(report), 0o644); werr != nil {
		fmt.Fprintf(os.Stderr, "rusage: %v\n", werr)
		os.Exit(127)
	}
	os.Exit(cmd.ProcessState.ExitCode())
}
