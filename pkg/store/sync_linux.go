package store

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncData is fdatasync: the data and the size, without the times, which the store never reads.
func syncData(f *os.File) error { return onFD(f, "fdatasync", unix.Fdatasync) }

func syncDir(f *os.File) error { return f.Sync() }

// syncFS is syncfs(2) on the file system of f, which must have been open since before the writes
// whose errors matter: a write-back error is reported once to each file descriptor open when it
// happened. Before Linux 5.8 syncfs reported no write-back error at all, so there it is not used.
func syncFS(f *os.File) error {
	if !syncFSReports() {
		return errors.ErrUnsupported
	}
	err := onFD(f, "syncfs", unix.Syncfs)
	if errors.Is(err, unix.ENOSYS) {
		return errors.ErrUnsupported
	}
	return err
}

// onFD calls a sync on f's descriptor, again when a signal interrupted it; its error names f.
func onFD(f *os.File, op string, call func(fd int) error) error {
	c, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := c.Control(func(fd uintptr) {
		for {
			if serr = call(int(fd)); serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: op, Path: f.Name(), Err: serr}
	}
	return nil
}

// syncFSReports tells whether the kernel's syncfs reports write-back errors (Linux 5.8 and later).
var syncFSReports = sync.OnceValue(func() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	v := strings.SplitN(unix.ByteSliceToString(u.Release[:]), ".", 3)
	if len(v) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(v[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(v[1], func(r rune) bool { return r < '0' || r > '9' }))
	return err1 == nil && err2 == nil && (major > 5 || major == 5 && minor >= 8)
})

// devOf is the device (st_dev) of the file system fi is on.
func devOf(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Dev), true //nolint:unconvert // Dev is uint32 on some architectures
}
