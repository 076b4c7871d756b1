package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tailsAsked lists, for each log request of pod tail-0 a run made (client-go's request log at
// -v=6), the tailLines it asked for ("" for none).
func tailsAsked(stderr string) []string {
	logRequestRE := regexp.MustCompile(`/pods/tail-0/log\?[^" ]*`)
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		// client-go logs a request once, with its response.
		if !strings.Contains(line, "Response") {
			continue
		}
		u := logRequestRE.FindString(line)
		if u == "" {
			continue
		}
		tail := ""
		if m := regexp.MustCompile(`[?&]tailLines=(\d+)`).FindStringSubmatch(u); m != nil {
			tail = m[1]
		}
		out = append(out, tail)
	}
	return out
}

// tailPod creates pod tail-0 whose container logged 4,000 lines over the 4,000 s before now, and
// exports it into dir: a tail of a few hundred entries then holds what is new, and costs less
// than finding since (see tailShare in pkg/export), even on a slow machine.
func tailPod(t *testing.T, ns, dir string, now time.Time) (log *criLog, want []string, file string) {
	t.Helper()
	log = newLog(t)
	var b strings.Builder
	for i := range 4000 {
		text := fmt.Sprintf("line-%d", i)
		fmt.Fprintf(&b, "%s stdout F %s\n", now.Add(time.Duration(i-4000)*time.Second).Format(criLayout), text)
		want = append(want, text)
	}
	log.raw(b.String())
	createPod(t, ns, pod{name: "tail-0", containers: []container{{name: "app", log: log}}})
	if c := find(t, export(t, "-n", ns, "-d", dir), ns, "tail-0", "app"); c.Lines != 4000 {
		t.Fatalf("first run: %+v", c)
	}
	return log, want, filepath.Join(dir, ns, "tail-0", "app.log")
}

// A resume asks kwok (which reads logs as a kubelet does) for the log's tail rather than having
// it read the whole file to find sinceTime, and stores exactly what is new; where the tail does
// not reach back to the stored lines, it asks again from sinceTime alone, and loses nothing.
func TestResumeFromTheLogsTail(t *testing.T) {
	ns, dir, now := newNamespace(t), t.TempDir(), time.Now().UTC().Truncate(time.Second)
	log, want, file := tailPod(t, ns, dir, now)

	run := func(status string, wantTails []string, extra ...string) {
		t.Helper()
		res := logexport(t, append([]string{"-n", ns, "-d", dir, "-o", "json", "-v=6"}, extra...)...)
		if res.code != 0 {
			t.Fatalf("exit %d", res.code)
		}
		c := find(t, decode(t, res.stdout), ns, "tail-0", "app")
		if c.Status != status || len(c.Gaps) > 0 {
			t.Errorf("summary %+v, want %s without gaps", c, status)
		}
		got := tailsAsked(res.stderr)
		match := len(got) == len(wantTails)
		for i := 0; match && i < len(got); i++ {
			match = wantTails[i] == "" && got[i] == "" || wantTails[i] == "*" && got[i] != "" || wantTails[i] == got[i]
		}
		if !match {
			t.Errorf("log requests asked for tails %q, want %q", got, wantTails)
		}
		assertFile(t, file, lines(want...))
	}

	// New lines, the same text again and again, some in the second of the newest stored line.
	var texts []string
	for range 20 {
		texts = append(texts, "same")
	}
	log.add(now.Add(-500*time.Millisecond), texts[:5]...).add(now.Add(time.Second), texts[5:]...)
	want = append(want, texts...)
	run("ok", []string{"*"})

	// A tail of five entries begins among the new lines: asked again from sinceTime.
	log.add(now.Add(2*time.Second), seq("new", 30)...)
	want = append(want, seq("new", 30)...)
	run("ok", []string{"5", ""}, "--resume-tail", "5")

	// Nothing new: the tail is all the run asks for.
	run("up to date", []string{"*"})
}

// A follower opens each stream again at every reconnect interval: from the log's tail too, not
// by having kwok read the whole file to sinceTime; the file gets every line once, those logged
// before it started and those logged while it follows.
func TestFollowReconnectsFromTheLogsTail(t *testing.T) {
	ns, dir, now := newNamespace(t), t.TempDir(), time.Now().UTC().Truncate(time.Second)
	log, want, file := tailPod(t, ns, dir, now)
	log.add(now.Add(-300*time.Millisecond), "before-1", "line-3999")
	want = append(want, "before-1", "line-3999")
	f := startFollow(t, "-n", ns, "-d", dir, "--reconnect-interval", "2s", "-v=6")
	waitContent(t, file, lines(want...))
	for i := range 3 {
		// Each while a stream is open, and across reconnects.
		texts := seq(fmt.Sprint("followed-", i), 3)
		log.add(time.Now(), texts...)
		want = append(want, texts...)
		waitContent(t, file, lines(want...))
		time.Sleep(2500 * time.Millisecond)
	}
	f.stop(syscall.SIGTERM)
	assertFile(t, file, lines(want...))
	// Each opening asks twice: a stream that ends, to catch up, then the followed one.
	got := tailsAsked(f.stderr.String())
	tails := 0
	for _, n := range got {
		if n != "" {
			tails++
		}
	}
	if len(got) < 6 || tails != len(got) {
		t.Errorf("the follower's log requests asked for tails %q, want at least 6 (3 openings), each a tail", got)
	}
}
