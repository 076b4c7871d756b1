package export

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logexport/kubectl-logexport/test/logserver"
)

// break60Setup follows p0/c (a-0 stored, 4096-byte buffer, 100 ms interval), serves b-1 (saved at
// once) and b-2 with, in the same second or the next (fresh), the start of a long line; it
// returns once CommitLines has saved a-0..b-2 while the stream waits inside the long line.
func break60Setup(t *testing.T, fresh bool, sameRead bool) (l *tailLog, f *ftFollower, dir string, at time.Time) {
	t.Helper()
	l = newTailLog(t)
	sec := time.Now().Add(-time.Minute).Truncate(time.Second)
	l.add(logserver.Entry{Time: sec, Text: "a-0"})
	dir = l.stored(t, Options{})
	f = &ftFollower{t: t, srv: l.srv, dir: dir, opts: Options{Follow: true, CommitInterval: 100 * time.Millisecond, BufferSize: 4096}}
	f.start(1, false)
	t.Cleanup(f.stop)
	time.Sleep(300 * time.Millisecond)
	l.add(logserver.Entry{Time: sec.Add(time.Second), Text: "b-1"})
	time.Sleep(20 * time.Millisecond)
	b2 := logserver.Entry{Time: sec.Add(time.Second + time.Millisecond), Text: "b-2"}
	at = sec.Add(time.Second + 2*time.Millisecond)
	if fresh {
		at = sec.Add(2 * time.Second)
	}
	start := logserver.Entry{Time: at, Partial: true, Text: strings.Repeat("x", 6000)}
	if sameRead {
		l.add(b2, start)
	} else {
		l.add(b2)
		time.Sleep(20 * time.Millisecond)
		l.add(start)
	}
	checkCommitted(t, dir, int64(len("a-0\nb-1\nb-2\n")))
	return l, f, dir, at
}

func break60Check(t *testing.T, f *ftFollower, l *tailLog, dir, what string) {
	t.Helper()
	want := l.file()
	if got, ok := f.wait(want, 5*time.Second); !ok {
		t.Fatalf("%s: file's complete lines %q, want %q (lines: %d, want %d)\n%s", what, tailOf(got), tailOf(want), strings.Count(got, "\n"), strings.Count(want, "\n"), f.report())
	}
	f.stop()
	if got := readLog(t, dir, "p0", "c"); got != want {
		t.Fatalf("%s: file after stop %q, want %q", what, tailOf(got), tailOf(want))
	}
	checkCommitted(t, dir, int64(len(want)))
	// A one-shot run after: nothing new, nothing doubled.
	res := tailRun(t, l.srv, dir, Options{})
	if res.Err != nil || res.Lines != 0 {
		t.Fatalf("%s: a run after stored %d lines (%v), want 0", what, res.Lines, res.Err)
	}
	if got := readLog(t, dir, "p0", "c"); got != want {
		t.Fatalf("%s: file after a later run %q, want %q", what, tailOf(got), tailOf(want))
	}
}

// A follower saves inside a long line (CommitLines), and then is reconnected, stopped and
// restarted, or goes on: each way the file must end up exact.
func TestBreak60SaveInsideLongLineThenResume(t *testing.T) {
	for _, fresh := range []bool{false, true} {
		for _, sameRead := range []bool{false, true} {
			for _, action := range []string{"reconnect inside", "stop and restart inside", "more pieces", "reconnect after", "rotate inside", "reconnect after more"} {
				name := fmt.Sprintf("fresh=%v/same=%v/%s", fresh, sameRead, action)
				t.Run(name, func(t *testing.T) {
					l, f, dir, at := break60Setup(t, fresh, sameRead)
					rest := logserver.Entry{Time: at, Text: strings.Repeat("y", 100) + "-end"}
					switch action {
					case "reconnect inside":
						f.interrupt()
						time.Sleep(150 * time.Millisecond)
						l.add(rest)
					case "stop and restart inside":
						f.stop()
						if got := readLog(t, dir, "p0", "c"); got != "a-0\nb-1\nb-2\n" {
							t.Fatalf("file after a stop inside the long line: %q, want the checkpoint's lines", tailOf(got))
						}
						f.start(2, false)
						time.Sleep(150 * time.Millisecond)
						l.add(rest)
					case "more pieces":
						for i := range 3 {
							l.add(logserver.Entry{Time: at, Partial: true, Text: strings.Repeat(fmt.Sprint(i), 5000)})
							time.Sleep(150 * time.Millisecond)
							checkCommitted(t, dir, int64(len("a-0\nb-1\nb-2\n")))
						}
						l.add(rest)
					case "reconnect after":
						l.add(rest)
						if _, ok := f.wait(l.file(), 3*time.Second); !ok {
							t.Fatalf("long line not stored\n%s", f.report())
						}
						time.Sleep(150 * time.Millisecond)
						f.interrupt()
						time.Sleep(150 * time.Millisecond)
						l.add(logserver.Entry{Time: at.Add(time.Millisecond), Text: "c-1"})
					case "reconnect after more":
						l.add(rest, logserver.Entry{Time: at.Add(time.Millisecond), Text: "c-0"})
						if _, ok := f.wait(l.file(), 3*time.Second); !ok {
							t.Fatalf("long line not stored\n%s", f.report())
						}
						f.interrupt() // possibly before c-0's save
						time.Sleep(150 * time.Millisecond)
						l.add(logserver.Entry{Time: at.Add(2 * time.Millisecond), Text: "c-1"})
					case "rotate inside":
						l.srv.Rotate("default", "p0", "c")
						time.Sleep(50 * time.Millisecond)
						l.add(rest)
					}
					if action == "rotate inside" {
						// The rest's entry lands in the new file, served as a line of its own:
						// the file must hold the lines before, the partial line or not, never
						// doubled; only check the complete lines before are there once.
						time.Sleep(500 * time.Millisecond)
						f.stop()
						got := readLog(t, dir, "p0", "c")
						if strings.Count(got, "b-2\n") != 1 || !strings.HasPrefix(got, "a-0\nb-1\nb-2\n") {
							t.Fatalf("after a rotation inside the long line: %q\n%s", tailOf(got), f.report())
						}
						return
					}
					break60Check(t, f, l, dir, action)
				})
			}
		}
	}
}

// The container stops (or restarts) while the stream is inside the long line, after CommitLines
// saved the lines before it: the line, which never gets its newline, is stored completed, once.
func TestBreak60StopInsideLongLine(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprint("restart=", restart), func(t *testing.T) {
			l, f, dir, at := break60Setup(t, false, false)
			long := strings.Repeat("x", 6000)
			want := "a-0\nb-1\nb-2\n" + long + "\n"
			if restart {
				l.srv.Restart("default", "p0", "c")
				time.Sleep(100 * time.Millisecond)
				l.srv.Append("default", "p0", "c", logserver.Entry{Time: at.Add(time.Second), Text: "new-1"})
				want += "new-1\n"
			} else {
				l.srv.Terminate("default", "p0", "c", 0)
			}
			if got, ok := f.wait(want, 5*time.Second); !ok {
				t.Fatalf("file %q, want %q (%d lines, want %d)\n%s", tailOf(got), tailOf(want), strings.Count(got, "\n"), strings.Count(want, "\n"), f.report())
			}
			time.Sleep(300 * time.Millisecond)
			f.stop()
			if got := readLog(t, dir, "p0", "c"); got != want {
				t.Fatalf("file after stop %q, want %q", tailOf(got), tailOf(want))
			}
			checkCommitted(t, dir, int64(len(want)))
		})
	}
}
