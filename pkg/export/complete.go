package export

import (
	"strings"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/store"
)

// A container instance that has terminated logs nothing more: once its log is stored up to its
// end, asking for it again can only serve what is stored (or nothing, once the kubelet rotated it
// away or removed the dead container). The checkpoint says so (store.Checkpoint.Complete), and
// such an instance is not requested again: a run over thousands of finished Jobs, init containers
// and crashed instances costs what is new, not one request each.

// storedToEnd returns the listed instance whose log the checkpoint says is stored up to its end,
// nil if none: current, when it has terminated (nothing of the container is new), or older, the
// previous instance (only current's log is new). An instance the status shows running is never
// it, whatever the checkpoint says, nor one named by its start time: without a container ID, two
// instances started in the same second cannot be told apart. confirmed asks for a second read
// that ended where the first did (store.Checkpoint.Confirmed), as skipping its request does;
// without it, one read to a normal end is enough (what is lost when the pod goes).
func storedToEnd(cp *store.Checkpoint, podUID string, older, current *instance, confirmed bool) *instance {
	if cp == nil || cp.Complete == "" || cp.Complete != cp.Instance || cp.PodUID != podUID || startNamed(cp.Complete) ||
		confirmed && !cp.Confirmed {
		return nil
	}
	for _, in := range []*instance{current, older} {
		if in != nil && !in.running && in.id == cp.Complete {
			return in
		}
	}
	return nil
}

// readToEnd tells whether a stream of the current log (previous=false) that ended normally, at
// EOF, with every line it served written, read in's log up to its end for good. in must have
// terminated in the status the request was made with, and the stream must be proven to be in's
// by a proof that does not rest on the pod's status, which can lag behind the kubelet: had the
// container restarted just before the request, previous=false served the new instance, and
// marking in stored to its end would never let its own lines be read. Two proofs hold whatever
// the status says: the stream served the checkpoint's window (matched), the lines already stored
// from in; or it served a line older than the second in finished, which no later instance can
// have logged (it started after in finished, by the same node's clock). A line older than in's
// own start proves nothing: the node's clock stepped back. An empty log is never proven, and is
// asked for again by every run.
func readToEnd(in *instance, matched bool, earliest time.Time) bool {
	if in == nil || in.running || in.previous || in.id == "" || startNamed(in.id) {
		return false
	}
	if matched {
		return true
	}
	return !earliest.IsZero() && !in.finished.IsZero() &&
		earliest.Before(in.finished.Truncate(time.Second)) && !earliest.Before(in.started.Truncate(time.Second))
}

// staleEnd tells whether a stream of the current log that served stored lines only, while the
// window is not known (after a rotation, see store.Checkpoint.After), read in's log up to its end.
// Such a stream never writes, so the window is never known again, and no stream matches it: the
// end has to be proven and confirmed otherwise. Proven: the stream served lines, none newer than
// the newest stored one (last), which was logged before in finished, so no later instance can
// have logged them (unless the node's clock stepped back: a line older than in's start). Then
// a second look of the same export that serves the same bytes confirms it (see stream).
func staleEnd(in *instance, newest, last, earliest time.Time) bool {
	return in != nil && !in.running && !in.previous && in.id != "" && !startNamed(in.id) &&
		!newest.IsZero() && !newest.After(last) && !earliest.Before(in.started.Truncate(time.Second))
}

// confirms tells whether a stream that readToEnd accepted also confirms the end: it served the
// checkpoint's window as stored (matched), lines stored by an earlier stream, and nothing after
// them (fresh: a fragment the window did not consume). A stream cut short that the API server
// ended normally serves less than the log holds; a second one that ends at the same line is not.
func confirms(matched, fresh bool) bool { return matched && !fresh }

// startNamed tells an instance named by its start time (see startID) from one with a container ID.
func startNamed(id string) bool { return strings.HasPrefix(id, "pod://") }
