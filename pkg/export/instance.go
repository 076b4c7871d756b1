package export

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/logexport/kubectl-logexport/pkg/target"
)

// instance is one run of a container, as the log API addresses it.
type instance struct {
	id      string
	started time.Time
	// finished is when it terminated, zero while it runs (or if the status does not say).
	finished time.Time
	running  bool
	previous bool
}

// instances returns the instance before the current one (if the API still serves it) and the
// current one, following the kubelet's choice of container for previous=false and previous=true.
func instances(podUID string, st *corev1.ContainerStatus) (older, current *instance) {
	if st == nil {
		return nil, nil
	}
	last := st.LastTerminationState.Terminated
	switch {
	case st.State.Running != nil:
		current = &instance{id: st.ContainerID, started: st.State.Running.StartedAt.Time, running: true}
	case st.State.Terminated != nil:
		t := st.State.Terminated
		id := t.ContainerID
		if id == "" {
			id = st.ContainerID
		}
		current = &instance{id: id, started: t.StartedAt.Time, finished: t.FinishedAt.Time}
	case last != nil:
		// Waiting to restart: the kubelet serves the last terminated instance as the current log.
		return nil, &instance{id: last.ContainerID, started: last.StartedAt.Time, finished: last.FinishedAt.Time}
	default:
		return nil, nil
	}
	if last != nil && (last.ContainerID == "" || last.ContainerID != current.id) {
		older = &instance{id: last.ContainerID, started: last.StartedAt.Time, finished: last.FinishedAt.Time, previous: true}
	}
	for _, in := range []*instance{older, current} {
		// A kubelet always reports container IDs; without one, the start time still tells
		// instances apart.
		if in != nil && in.id == "" {
			in.id = startID(podUID, in.started)
		}
	}
	if older != nil && older.id == current.id {
		older = nil
	}
	return older, current
}

func startID(podUID string, started time.Time) string {
	return fmt.Sprintf("pod://%s/started/%s", podUID, started.UTC().Format(time.RFC3339))
}

// is tells whether a checkpoint's instance is in. An instance first seen without a container ID
// (before the runtime reported it) is the same one once the ID shows up.
func (in *instance) is(podUID, stored string) bool {
	return in != nil && (stored == in.id || stored == startID(podUID, in.started))
}

// same tells whether two resolutions name the same instance.
func (in *instance) same(podUID string, other *instance) bool {
	return in != nil && other != nil && (other.is(podUID, in.id) || in.is(podUID, other.id))
}

// errUnprovable: the stream came from the listed pod, which is gone, so whether the container
// restarted between the list and the log request cannot be told any more.
var errUnprovable = errors.New("the pod is gone, and with it the status that would tell which instance served the log")

// instanceChanged says that the pod's status no longer matches the one the export resolved its
// instances from, so what a stream served may belong to another instance than the one asked for:
// the export starts again from its last checkpoint with the fresh target.
type instanceChanged struct {
	fresh target.Target
}

func (e *instanceChanged) Error() string {
	return fmt.Sprintf("container %s changed while it was exported (restarted, or the pod was replaced)", e.fresh.Key())
}

// nodeClockSkew is how far the clocks of two nodes may be apart: a pod replaced under the same
// name between the list and the log request may run on another node than the listed one.
const nodeClockSkew = time.Minute

// servedBefore tells, without asking the API, that a stream of the current log (previous=false)
// came from the listed instance in, or from the pod as listed if it is gone: its oldest line is
// older than the node's clock when the pods were listed (less nodeClockSkew), and an instance
// that started after the list, which is the only other one previous=false can serve, cannot have
// logged it. A previous=true stream gets no such proof: the instance it may serve instead (the
// listed current one, after a restart) ran before the list. Nor does a line older than in's own
// start, which in cannot have logged: the node's clock stepped back.
func servedBefore(in *instance, earliest, nodeTime time.Time) bool {
	return !in.previous && !earliest.IsZero() && !nodeTime.IsZero() && earliest.Before(nodeTime.Add(-nodeClockSkew)) &&
		!earliest.Before(in.started.Truncate(time.Second))
}

// serves asks the API server which instance a log request for in would be served from now. The
// API cannot pin a log request to a container instance: previous=false serves whatever instance
// is current when the request arrives, which may be newer than the listed status if the
// container restarted (or the pod was replaced) in between. Asked after a stream, an unchanged
// answer proves the stream came from in (container IDs only move forward). So does a line older
// than the only instance that could have served it instead: no instance logs before it starts.
// Otherwise it returns *instanceChanged. earliest is the oldest line the stream served, zero if
// none.
func serves(ctx context.Context, e *Exporter, t target.Target, in *instance, earliest time.Time) error {
	pod, err := e.Client.CoreV1().Pods(t.Namespace).Get(ctx, t.Pod, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// Deleted after it served: the stream came from the pod as listed, but which of its
		// instances served it can no longer be asked.
		return errUnprovable
	case err != nil:
		return fmt.Errorf("checking the status of %s: %w", t.Key(), err)
	}
	fresh := target.Of(pod, t.Container)
	changed := &instanceChanged{fresh: fresh}
	older, current := instances(fresh.PodUID, fresh.Status)
	if fresh.PodUID != t.PodUID {
		// A new pod under the same name. Its container cannot have served a line older than
		// its first instance started (both times from the node's clock, whole seconds in the
		// API); one that never started served nothing.
		first := current
		if older != nil {
			first = older
		}
		if first == nil || (!earliest.IsZero() && earliest.Before(first.started)) {
			return errUnprovable
		}
		return changed
	}
	if in.previous {
		if in.same(t.PodUID, older) {
			return nil
		}
		return changed
	}
	switch {
	case in.same(t.PodUID, current):
		return nil
	case in.same(t.PodUID, older) && current != nil && !earliest.IsZero() && earliest.Before(current.started):
		// One restart since: the new instance cannot have served a line older than its start.
		return nil
	}
	return changed
}
