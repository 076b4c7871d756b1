package cmd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/logexport/kubectl-logexport/pkg/shard"
)

// The shard comes from the flags, or, in a StatefulSet's pod, from its ordinal; what does not
// make a shard is refused on one line before anything talks to the cluster.
func TestShardFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		host string
		want shard.Shard
		err  string
	}{
		{name: "not split", want: shard.Shard{Index: 0, Total: 1}},
		{name: "flags", args: []string{"--total-shards", "3", "--shard-index", "2"}, want: shard.Shard{Index: 2, Total: 3}},
		{name: "the flag wins over the pod's ordinal", args: []string{"--total-shards", "3", "--shard-index", "0"},
			env: map[string]string{shardIndexEnv: "2"}, want: shard.Shard{Index: 0, Total: 3}},
		{name: "the pod-index label through the downward API", args: []string{"--total-shards", "3"},
			env: map[string]string{shardIndexEnv: "1", "POD_NAME": "logexport-2"}, want: shard.Shard{Index: 1, Total: 3}},
		{name: "POD_NAME's ordinal", args: []string{"--total-shards", "3"},
			env: map[string]string{"POD_NAME": "logexport-2"}, want: shard.Shard{Index: 2, Total: 3}},
		{name: "the host name in a pod", args: []string{"--total-shards", "4"},
			env: map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, host: "logexport-3", want: shard.Shard{Index: 3, Total: 4}},
		{name: "not the host name outside a pod", args: []string{"--total-shards", "4"}, host: "build-3",
			err: "--total-shards 4 needs --shard-index (or $LOGEXPORT_SHARD_INDEX, or a StatefulSet pod's name ending in -N)"},
		{name: "no ordinal", args: []string{"--total-shards", "2"}, env: map[string]string{"POD_NAME": "logexport-7d9f8c-abcde"},
			err: "--total-shards 2 needs --shard-index"},
		{name: "a bad variable", args: []string{"--total-shards", "2"}, env: map[string]string{shardIndexEnv: "one"},
			err: `LOGEXPORT_SHARD_INDEX="one" is not a shard index: give a number from 0 to 1`},
		{name: "an ordinal beyond the total", args: []string{"--total-shards", "3"}, env: map[string]string{"POD_NAME": "logexport-3"},
			err: "--shard-index 3 is not a shard of --total-shards 3: use 0 to 2"},
		{name: "index beyond", args: []string{"--total-shards", "3", "--shard-index", "3"}, err: "--shard-index 3 is not a shard of --total-shards 3: use 0 to 2"},
		{name: "negative index", args: []string{"--total-shards", "3", "--shard-index", "-1"}, err: "--shard-index -1 is not a shard of --total-shards 3"},
		{name: "an index without a split", args: []string{"--shard-index", "1"}, err: "--shard-index 1 is not a shard of --total-shards 1"},
		{name: "no shards", args: []string{"--total-shards", "0"}, err: "--total-shards must be at least 1, got 0"},
		{name: "a lease shorter than its record", args: []string{"--total-shards", "2", "--shard-index", "0", "--lease-duration", "500ms"},
			err: "--lease-duration must be at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, _, _, _ := genericiooptions.NewTestIOStreams()
			o := NewOptions(streams)
			o.getenv = func(k string) string { return tt.env[k] }
			o.hostname = func() (string, error) { return tt.host, nil }
			c := newCmd(o)
			if err := c.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			err := o.Complete(c, nil)
			if err == nil {
				err = o.Validate()
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.shard != tt.want {
				t.Fatalf("shard %+v, want %+v", o.shard, tt.want)
			}
			for _, s := range o.selections {
				if s.Selector.Shard != tt.want && tt.want.Enabled() {
					t.Fatalf("selection's shard %+v, want %+v", s.Selector.Shard, tt.want)
				}
			}
		})
	}
}

func shardPods(n int) []runtime.Object {
	var objs []runtime.Object
	for i := range n {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("p%d", i)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}})
	}
	return objs
}

// A dry run of a shard lists that shard's pods, and takes no lease (it writes nothing).
func TestShardDryRun(t *testing.T) {
	client := fake.NewClientset(shardPods(20)...)
	seen := map[string]int{}
	for idx := range 3 {
		streams, _, out, _ := genericiooptions.NewTestIOStreams()
		o := NewOptions(streams)
		o.client, o.namespace, o.DryRun, o.Dir = client, "ns", true, "out"
		o.TotalShards, o.ShardIndex = 3, idx
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := o.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n")[1:] {
			pod := strings.Fields(line)[1]
			if got := shard.Of("ns", pod, 3); got != idx {
				t.Fatalf("shard %d/3 lists %s, of shard %d", idx, pod, got)
			}
			seen[pod]++
		}
	}
	if len(seen) != 20 {
		t.Fatalf("the 3 shards list %d of 20 pods", len(seen))
	}
	if leases, _ := client.CoordinationV1().Leases("").List(context.Background(), metav1.ListOptions{}); len(leases.Items) > 0 {
		t.Fatalf("a dry run took %d leases", len(leases.Items))
	}
}

// A one-shot run of a shard holds its lease while it writes, says the shard in its summary line,
// and releases the lease when it is done; a second run of the shard can then take it at once.
func TestShardOneShotHoldsAndReleasesTheLease(t *testing.T) {
	client := fake.NewClientset(shardPods(6)...)
	dir := t.TempDir()
	for range 2 {
		streams, _, _, errOut := genericiooptions.NewTestIOStreams()
		o := NewOptions(streams)
		o.client, o.namespace, o.Dir = client, "ns", dir
		o.TotalShards, o.ShardIndex, o.LeaseDuration = 2, 1, 2*time.Second
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		// The fake serves no logs: every container fails, the run says so (exit 1); the lease is
		// what is looked at.
		_ = o.Run(context.Background())
		if !strings.Contains(errOut.String(), "into "+dir+" (shard 1/2)") {
			t.Fatalf("the summary line does not say the shard:\n%s", errOut)
		}
		abs, _ := filepath.Abs(dir)
		l, err := client.CoordinationV1().Leases("ns").Get(context.Background(), shard.LeaseName(abs, 1), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("no lease for shard 1/2 of %s: %v", abs, err)
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "" || l.Labels[shard.LabelTotalShards] != "2" {
			t.Fatalf("after the run: holder %v, labels %v; want released, total 2", l.Spec.HolderIdentity, l.Labels)
		}
	}
}

func TestShardLost(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	if shardLost(ctx) != nil {
		t.Fatal("a live context is no loss")
	}
	cancel(fmt.Errorf("%w ns/logexport-x-1 for shard 1/2", shard.ErrLost))
	err := shardLost(ctx)
	if !errors.Is(err, shard.ErrLost) || !strings.Contains(err.Error(), "stopped writing") {
		t.Fatalf("err %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if shardLost(ctx2) != nil {
		t.Fatal("SIGTERM is no loss")
	}
}

// TestShardInterruptedWhileWaiting: a run stopped while another holds its lease says so, and its
// error is the context's, as that of a run stopped at its start: callers (and the model test's
// follower, stopped right after it started) tell a stop from a failure by it.
func TestShardInterruptedWhileWaiting(t *testing.T) {
	client := fake.NewClientset(shardPods(2)...)
	dir := t.TempDir()
	abs, _ := filepath.Abs(dir)
	_, release, err := shard.Acquire(context.Background(), client, shard.LeaseOptions{Namespace: "ns", Destination: abs,
		Shard: shard.Shard{Index: 1, Total: 2}, Identity: "other", LeaseDuration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	o := NewOptions(streams)
	o.client, o.namespace, o.Dir = client, "ns", dir
	o.TotalShards, o.ShardIndex, o.LeaseDuration = 2, 1, 2*time.Second
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = o.Run(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "interrupted while waiting for the lease of shard 1/2") {
		t.Fatalf("err = %v, want the interruption, wrapping the context's error", err)
	}
}
