// Package kwok runs pods on the kwok node of the local cluster (hack/cluster.sh) and makes them
// look the way a kubelet shows them, for the end-to-end tests and the benchmark.
package kwok

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Node is the node hack/cluster.sh creates.
const Node = "kwok-node-0"

// PodSpec runs the containers on the kwok node.
func PodSpec(containers ...corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{
		NodeName:    Node,
		Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		Containers:  containers,
	}
}

// ContainerID is a new ID of the kind a kubelet reports.
func ContainerID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "containerd://" + hex.EncodeToString(b)
}

// SetContainerIDs gives every container instance in st an ID. kwok leaves them empty, which a
// kubelet never does, and clients depend on them: stern skips such containers, and the export
// tells instances apart by them.
func SetContainerIDs(st *corev1.PodStatus) {
	for _, list := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for i := range list {
			id := ContainerID()
			list[i].ContainerID = id
			if term := list[i].State.Terminated; term != nil {
				term.ContainerID = id
			}
		}
	}
}

// LogFiles are the CRI log files kwok serves for one container: Current, and Previous (if not
// empty) for previous=true.
type LogFiles struct {
	Container, Current, Previous string
}

var logsGVR = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}

// ApplyLogs creates or replaces the Logs object through which kwok serves a pod's logs.
func ApplyLogs(ctx context.Context, dyn dynamic.Interface, namespace, pod string, files []LogFiles) error {
	logs := make([]any, 0, len(files))
	for _, f := range files {
		l := map[string]any{"containers": []any{f.Container}, "logsFile": f.Current}
		if f.Previous != "" {
			l["previousLogsFile"] = f.Previous
		}
		logs = append(logs, l)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
		"metadata": map[string]any{"name": pod, "namespace": namespace},
		"spec":     map[string]any{"logs": logs},
	}}
	_, err := dyn.Resource(logsGVR).Namespace(namespace).Apply(ctx, pod, obj, metav1.ApplyOptions{FieldManager: "logexport-tests", Force: true})
	if err != nil {
		return fmt.Errorf("applying Logs %s/%s: %w", namespace, pod, err)
	}
	return nil
}

// WaitServed waits until the API serves a container's log (previous: the previous instance's);
// kwok picks up a Logs object some time after it was applied.
func WaitServed(ctx context.Context, client kubernetes.Interface, namespace, pod, container string, previous bool) error {
	one := int64(1)
	opts := &corev1.PodLogOptions{Container: container, Previous: previous, LimitBytes: &one}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Pods(namespace).GetLogs(pod, opts).DoRaw(ctx)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for kwok to serve the log of %s/%s/%s (previous=%v): %w", namespace, pod, container, previous, err)
	}
	return nil
}
