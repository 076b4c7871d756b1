package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/shard"
)

// shardIndexEnv is where a StatefulSet's pod gets its ordinal: the downward API exposes the
// pod's apps.kubernetes.io/pod-index label as this variable (deploy/overlays/sharded).
const shardIndexEnv = "LOGEXPORT_SHARD_INDEX"

// shardOptions are the settings of a run that exports one shard of the pods.
type shardOptions struct {
	TotalShards    int
	ShardIndex     int
	LeaseNamespace string
	// LeaseDuration is --lease-duration (hidden: for tests; the renew deadline and retry period
	// keep the ratios of Kubernetes' defaults).
	LeaseDuration time.Duration

	shardIndexSet bool
	shard         shard.Shard
	// getenv and hostname are os.Getenv and os.Hostname, or a test's.
	getenv   func(string) string
	hostname func() (string, error)
}

func newShardOptions() shardOptions {
	return shardOptions{TotalShards: 1, LeaseDuration: shard.DefaultLeaseDuration}
}

func addShardFlags(f *pflag.FlagSet, o *Options) {
	f.IntVar(&o.TotalShards, "total-shards", o.TotalShards, "Split the pods among this many runs or replicas by a hash of namespace and name; this one exports those of --shard-index and holds a Lease for them (1: no split)")
	f.IntVar(&o.ShardIndex, "shard-index", 0, "With --total-shards, the shard to export, 0 to total-1 (default: $"+shardIndexEnv+", or the ordinal of a StatefulSet's pod)")
	f.StringVar(&o.LeaseNamespace, "lease-namespace", "", "With --total-shards, the namespace of the shards' Leases (default: the namespace of -n or of the current context)")
	f.DurationVar(&o.LeaseDuration, "lease-duration", o.LeaseDuration, "How long a shard's Lease lasts without renewal")
	_ = f.MarkHidden("lease-duration")
}

// statefulSetOrdinal is the ordinal at the end of a StatefulSet pod's name (web-2).
var statefulSetOrdinal = regexp.MustCompile(`-([0-9]+)$`)

// completeShard defaults --shard-index, when the pods are split and it was not given, from the
// ordinal of the StatefulSet pod the run is in: $LOGEXPORT_SHARD_INDEX (the pod-index label,
// through the downward API), else $POD_NAME's or, in a pod, the host name's trailing -N.
func (o *Options) completeShard(c *cobra.Command) error {
	if c != nil && c.Flags().Changed("shard-index") {
		o.shardIndexSet = true
	}
	getenv, hostname := o.getenv, o.hostname
	if getenv == nil {
		getenv = os.Getenv
	}
	if hostname == nil {
		hostname = os.Hostname
	}
	if o.TotalShards <= 1 || o.shardIndexSet {
		return nil
	}
	if v := getenv(shardIndexEnv); v != "" {
		i, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s=%q is not a shard index: give a number from 0 to %d", shardIndexEnv, v, o.TotalShards-1)
		}
		o.ShardIndex, o.shardIndexSet = i, true
		return nil
	}
	name := getenv("POD_NAME")
	if name == "" && getenv("KUBERNETES_SERVICE_HOST") != "" {
		// In a pod the host name is the pod's name. Outside one, a machine named build-2 is no
		// StatefulSet replica.
		name, _ = hostname()
	}
	if m := statefulSetOrdinal.FindStringSubmatch(name); m != nil {
		i, err := strconv.Atoi(m[1])
		if err == nil {
			o.ShardIndex, o.shardIndexSet = i, true
			klog.V(1).InfoS("shard index from the pod's name", "pod", name, "index", i)
			return nil
		}
	}
	return fmt.Errorf("--total-shards %d needs --shard-index (or $%s, or a StatefulSet pod's name ending in -N)", o.TotalShards, shardIndexEnv)
}

// validateShard checks the shard settings and narrows every selection to the shard.
func (o *Options) validateShard() error {
	if o.TotalShards < 1 {
		return fmt.Errorf("--total-shards must be at least 1, got %d", o.TotalShards)
	}
	o.shard = shard.Shard{Index: o.ShardIndex, Total: o.TotalShards}
	if err := o.shard.Validate(); err != nil {
		return err
	}
	if o.LeaseDuration < time.Second {
		return fmt.Errorf("--lease-duration must be at least 1s, got %s", o.LeaseDuration)
	}
	if !o.shard.Enabled() {
		return nil
	}
	for i := range o.selections {
		o.selections[i].Selector.Shard = o.shard
	}
	return nil
}

// shardNote is what the summary adds after its totals: " (shard 1/3)", or nothing.
func (o *Options) shardNote() string {
	if !o.shard.Enabled() {
		return ""
	}
	return " (" + o.shard.String() + ")"
}

// leaseDestination is what the shards' leases are named after: the directory, absolute, so that
// runs into different directories never share a lease (or a bucket URL, as it is).
func (o *Options) leaseDestination() (string, error) {
	if o.toBucket() {
		u, err := objstore.ParseURL(o.Dir)
		if err != nil {
			return "", err
		}
		return u.String(), nil // one name for s3://b/p/ and S3://b/p
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return "", fmt.Errorf("resolving --dir: %w", err)
	}
	return abs, nil
}

// holdShard waits until this run holds its shard's Lease (see pkg/shard for the protocol) and
// returns a context that ends when the lease is lost, and the function that releases it, once the
// run has stopped writing.
func (o *Options) holdShard(ctx context.Context, client kubernetes.Interface) (context.Context, func(), error) {
	dest, err := o.leaseDestination()
	if err != nil {
		return nil, nil, err
	}
	ns := o.LeaseNamespace
	if ns == "" {
		ns = o.namespace
	}
	d := o.LeaseDuration
	// held must end when the lease is lost, not at SIGTERM, when the last commits are saved:
	// ctx stops the waiting only.
	waiting, stopWaiting := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, stopWaiting)
	defer stop()
	held, release, err := shard.Acquire(waiting, client, shard.LeaseOptions{
		Namespace: ns, Destination: dest, Shard: o.shard,
		LeaseDuration: d, RenewDeadline: d * 2 / 3, RetryPeriod: d * 2 / 15,
		Waiting:  func(reason string) { fmt.Fprintf(o.ErrOut, "waiting: %s\n", reason) },
		Acquired: func(msg string) { fmt.Fprintln(o.ErrOut, msg) },
	})
	if err != nil {
		if ctx.Err() != nil {
			// Wraps ctx's error, as a run stopped at its start does: a follower stopped (SIGTERM)
			// while a rollout's other replica holds the lease was stopped, it did not fail.
			return nil, nil, fmt.Errorf("interrupted while waiting for the lease of %s: %w", o.shard, ctx.Err())
		}
		return nil, nil, fmt.Errorf("holding the lease of %s: %w", o.shard, err)
	}
	if !stop() {
		// Interrupted as the lease was taken.
		release()
		return nil, nil, fmt.Errorf("interrupted while waiting for the lease of %s: %w", o.shard, ctx.Err())
	}
	return held, func() { release(); stopWaiting() }, nil
}

// shardLost is the run's error when it stopped because its shard's lease was lost: it exits
// non-zero, and a replica restarted by its StatefulSet waits for the lease again.
func shardLost(ctx context.Context) error {
	if cause := context.Cause(ctx); errors.Is(cause, shard.ErrLost) {
		return fmt.Errorf("%w: stopped writing (what was saved stays; the next holder goes on from the checkpoints)", cause)
	}
	return nil
}
