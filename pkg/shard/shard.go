// Package shard splits the pods of a cluster among the replicas of a follower (or among one-shot
// runs), the way kube-state-metrics' --shard/--total-shards and Prometheus' hashmod do, and holds
// a Lease per shard so that only one process writes a shard at a time (lease.go).
//
// A pod belongs to shard Of(namespace, pod, total): FNV-1a (64 bit) of "namespace/pod", modulo
// total. The pod's name, not its UID: a pod replaced under the same name (a StatefulSet's redis-0)
// appends to the log its predecessor left, so it must stay with the shard that owns that log.
// FNV-1a is in the standard library, needs no key, is fast on short strings and spreads names
// that differ only in a suffix (web-0, web-1, ...) evenly; it is not a defence against names
// chosen to land in one shard, which nobody who may create pods needs to do to cost a follower
// work anyway.
//
// The assignment is part of what a deployment stores: changing the hash would move pods between
// shards, whose logs (and checkpoints) stay where they are. TestOfGolden pins it.
package shard

import (
	"fmt"
	"hash/fnv"
)

// Shard is one part of the pods: Index of Total. The zero value, like Total 1, is every pod.
type Shard struct {
	Index, Total int
}

// Enabled tells whether the pods are split at all.
func (s Shard) Enabled() bool { return s.Total > 1 }

// Owns tells whether the pod namespace/pod belongs to s.
func (s Shard) Owns(namespace, pod string) bool {
	return !s.Enabled() || Of(namespace, pod, s.Total) == s.Index
}

// String is how messages name the shard: "shard 1/3" is the second of three (indexes count from
// 0, as a StatefulSet's ordinals do).
func (s Shard) String() string {
	return fmt.Sprintf("shard %d/%d", s.Index, s.Total)
}

// Validate checks that the index is one of the total's.
func (s Shard) Validate() error {
	switch {
	case s.Total < 1:
		return fmt.Errorf("--total-shards must be at least 1, got %d", s.Total)
	case s.Index < 0 || s.Index >= s.Total:
		return fmt.Errorf("--shard-index %d is not a shard of --total-shards %d: use 0 to %d", s.Index, s.Total, s.Total-1)
	}
	return nil
}

// Of returns the shard, in [0, total), that the pod namespace/pod belongs to; 0 if total < 2.
func Of(namespace, pod string, total int) int {
	if total < 2 {
		return 0
	}
	h := fnv.New64a()
	// Writes to a hash never fail. The separator keeps "a/bc" and "ab/c" apart; neither a
	// namespace nor a pod name may contain "/".
	_, _ = h.Write([]byte(namespace))
	_, _ = h.Write([]byte{'/'})
	_, _ = h.Write([]byte(pod))
	return int(h.Sum64() % uint64(total))
}
