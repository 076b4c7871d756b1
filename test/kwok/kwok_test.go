package kwok

import (
	"regexp"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSetContainerIDs(t *testing.T) {
	st := corev1.PodStatus{
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}},
		ContainerStatuses:     []corev1.ContainerStatus{{Name: "a"}, {Name: "b"}},
	}
	SetContainerIDs(&st)
	id := regexp.MustCompile(`^containerd://[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for _, s := range append(st.InitContainerStatuses, st.ContainerStatuses...) {
		if !id.MatchString(s.ContainerID) || seen[s.ContainerID] {
			t.Errorf("%s: container ID %q, want a new containerd://<64 hex>", s.Name, s.ContainerID)
		}
		seen[s.ContainerID] = true
	}
	if term := st.InitContainerStatuses[0].State.Terminated; term.ContainerID != st.InitContainerStatuses[0].ContainerID {
		t.Errorf("terminated state has ID %q, the status %q", term.ContainerID, st.InitContainerStatuses[0].ContainerID)
	}
}
