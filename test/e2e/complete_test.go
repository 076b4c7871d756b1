package e2e

import (
	"path/filepath"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A container that terminated serves the same log forever: once a run stored it up to its end
// and the next confirmed that end (a response the API server ended early ends as normally), no
// later run asks for it again, one-shot or following (issue 13 (d): 2,000 containers of finished
// Jobs would otherwise cost 2,000 requests every run). Proven two ways: the runs' log requests
// are counted in client-go's -v=6 output, and the finished container's log file is rewritten
// behind kwok after the confirming run, so that a run that asked for it again would find the
// stored lines gone and report a rotation and store the new line.
func TestFinishedContainerNotRequestedAgain(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	job := pod{name: "job", containers: []container{{name: "work", log: newLog(t)}}}
	web := pod{name: "web", containers: []container{{name: "app", log: newLog(t)}}}
	createPod(t, ns, job)
	createPod(t, ns, web)
	now := time.Now().UTC()
	job.containers[0].log.add(now.Add(-3*time.Second), "work-1", "work-2")
	web.containers[0].log.add(now.Add(-3*time.Second), "app-1")
	// The Job's container ends as a kubelet reports it: terminated with its container ID, after
	// its lines; the pod succeeded.
	updateStatus(t, ns, job.name, func(st *corev1.PodStatus) {
		s := &st.ContainerStatuses[0]
		s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
			StartedAt: metav1.NewTime(now.Add(-time.Minute)), FinishedAt: metav1.NewTime(now), ContainerID: s.ContainerID}}
		s.Ready, s.Started = false, ptr(false)
		st.Phase = corev1.PodSucceeded
	})
	waitTerminated(t, ns, job.name, "work")
	workFile := filepath.Join(dir, ns, job.name, "work.log")
	appFile := filepath.Join(dir, ns, web.name, "app.log")

	run := func(what string) (runResult, int, int) {
		t.Helper()
		res := logexport(t, "-n", ns, "-d", dir, "-o", "json", "-v=6")
		if res.code != 0 {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, res.code, res.stdout, clip(res.stderr))
		}
		noGaps(t, what, decode(t, res.stdout))
		return res, logRequests(t, res.stderr, ns, job.name, "work"), logRequests(t, res.stderr, ns, web.name, "app")
	}
	res, work, app := run("first run")
	if work == 0 || app == 0 {
		t.Fatalf("first run: %d log requests for the finished container and %d for the running one, want some of each; has the -v=6 format changed?\n%s", work, app, clip(res.stderr))
	}
	assertFile(t, workFile, lines("work-1", "work-2"))
	if c := find(t, decode(t, res.stdout), ns, job.name, "work"); c.Status != "ok" || c.Lines != 2 {
		t.Fatalf("first run: finished container %+v, want ok with 2 lines", c)
	}

	// The second run reads it once more: the stored lines as stored, and nothing after them.
	res, work, _ = run("confirming run")
	if work == 0 {
		t.Errorf("confirming run: the finished container's log was not requested: one read does not prove its end")
	}
	assertFile(t, workFile, lines("work-1", "work-2"))
	if c := find(t, decode(t, res.stdout), ns, job.name, "work"); c.Status != "up to date" || c.Lines != 0 {
		t.Fatalf("confirming run: finished container %+v, want up to date", c)
	}

	// What a request would now be served: not the stored lines.
	job.containers[0].log.replace(now.Add(-2*time.Second).Format(criLayout) + " stdout F changed\n")
	web.containers[0].log.add(now.Add(-time.Second), "app-2")
	res, work, app = run("second run")
	if work != 0 {
		t.Errorf("second run: the finished container's log was requested %d times, want none", work)
	}
	if app == 0 {
		t.Errorf("second run: the running container's log was not requested")
	}
	assertFile(t, workFile, lines("work-1", "work-2"))
	assertFile(t, appFile, lines("app-1", "app-2"))
	s := decode(t, res.stdout)
	if c := find(t, s, ns, job.name, "work"); c.Status != "up to date" || c.Lines != 0 || c.File != workFile {
		t.Errorf("second run: finished container %+v, want up to date with its file", c)
	}
	if s.Selected != 2 || len(s.Containers) != 2 {
		t.Errorf("second run: %d containers selected, %d rows; want 2 and 2", s.Selected, len(s.Containers))
	}
	res = logexport(t, "-n", ns, "-d", dir)
	if res.code != 0 || !regexp.MustCompile(`job\s+work\s+0\s+0\s+up to date`).MatchString(res.stdout) {
		t.Errorf("the table does not list the finished container as up to date: exit %d\n%s", res.code, res.stdout)
	}

	// A follower started on the directory does not ask for it either; it lists it as up to date
	// (its export ran), and follows the running one.
	f := startWatchedFollow(t, "-n", ns, "-d", dir, "-o", "json", "-v=6")
	web.containers[0].log.add(time.Now().UTC(), "app-3")
	waitContent(t, appFile, lines("app-1", "app-2", "app-3"))
	code, fs := f.stopWithSummary()
	if code != 0 {
		t.Fatalf("follower: exit %d\n%s", code, clip(f.stderr.String()))
	}
	if n := logRequests(t, f.live.String(), ns, job.name, "work"); n != 0 {
		t.Errorf("follower: the finished container's log was requested %d times, want none", n)
	}
	if c := find(t, fs, ns, job.name, "work"); c.Status != "up to date" || c.Error != "" {
		t.Errorf("follower: finished container %+v, want up to date", c)
	}
	assertFile(t, workFile, lines("work-1", "work-2"))
}
