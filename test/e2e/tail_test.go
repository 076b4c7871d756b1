package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// logRequestRE matches a log request of pod tail-0 in client-go's request log (-v=6), with its
// tailLines if it asked for one.
var logRequestRE = regexp.MustCompile(`/pods/tail-0/log\?[^" ]*`)

// tailsAsked lists, for each log request a run made, the tailLines it asked for ("" for none).
func tailsAsked(stderr string) []string {
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

// A resume asks kwok (which reads logs as a kubelet does) for the log's tail rather than having
// it read the whole file to find sinceTime, and stores exactly what is new; where the tail does
// not reach back to the stored lines, it asks again from sinceTime alone, and loses nothing.
func TestResumeFromTheLogsTail(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	log := newLog(t)
	var want []string
	var b strings.Builder
	// 2,000 lines over the last 1,000 s: an estimate of a few hundred entries holds what is new.
	for i := range 2000 {
		text := fmt.Sprintf("line-%d", i)
		fmt.Fprintf(&b, "%s stdout F %s\n", now.Add(time.Duration(i-2000)*500*time.Millisecond).Format(criLayout), text)
		want = append(want, text)
	}
	log.raw(b.String())
	createPod(t, ns, pod{name: "tail-0", containers: []container{{name: "app", log: log}}})
	file := filepath.Join(dir, ns, "tail-0", "app.log")
	if c := find(t, export(t, "-n", ns, "-d", dir), ns, "tail-0", "app"); c.Lines != 2000 {
		t.Fatalf("first run: %+v", c)
	}

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
