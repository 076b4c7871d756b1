package shard

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// The assignment is stored state: a deployment's logs and checkpoints sit with the shard that
// owned each pod. These values were computed once; a change of hash, separator or modulo breaks
// them, and with them every sharded deployment's split.
func TestOfGolden(t *testing.T) {
	for _, c := range []struct {
		namespace, pod string
		of2, of3, of10 int
	}{
		{"default", "redis-0", 1, 0, 3},
		{"default", "redis-1", 0, 2, 2},
		{"default", "redis-2", 1, 2, 5},
		{"kube-system", "coredns-7db6d8ff4d-abcde", 1, 0, 7},
		{"shop", "cart-7d9f", 1, 2, 7},
		// The separator keeps these apart.
		{"a", "bc", 0, 0, 2},
		{"ab", "c", 0, 2, 4},
		{"", "", 0, 0, 8},
	} {
		for total, want := range map[int]int{2: c.of2, 3: c.of3, 10: c.of10} {
			if got := Of(c.namespace, c.pod, total); got != want {
				t.Errorf("Of(%q, %q, %d) = %d, want %d", c.namespace, c.pod, total, got, want)
			}
		}
	}
}

// fnv1a is FNV-1a 64 written out from its definition (offset basis and prime), so that Of is
// checked against the documented hash and not only against itself.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func TestOfIsFNV1aOfNamespaceSlashPod(t *testing.T) {
	for i := range 500 {
		ns, pod := fmt.Sprintf("ns-%d", i%7), fmt.Sprintf("pod-%d-%s", i, strings.Repeat("x", i%13))
		for _, total := range []int{2, 3, 5, 64} {
			want := int(fnv1a(ns+"/"+pod) % uint64(total))
			if got := Of(ns, pod, total); got != want {
				t.Fatalf("Of(%q, %q, %d) = %d, FNV-1a says %d", ns, pod, total, got, want)
			}
		}
	}
}

// Each of 3 shards gets a fair share of 3,000 pods named as controllers name them: a
// StatefulSet's ordinals, a ReplicaSet's random suffixes, in a few namespaces.
func TestOfDistribution(t *testing.T) {
	for _, c := range []struct {
		name  string
		total int
		pod   func(i int) (string, string)
	}{
		{"statefulset ordinals", 3, func(i int) (string, string) { return "db", fmt.Sprintf("redis-%d", i) }},
		{"replicaset suffixes", 3, func(i int) (string, string) {
			return fmt.Sprintf("team-%d", i%5), fmt.Sprintf("web-7d9f8c6b5-%05x", i*7919)
		}},
		{"namespaces", 3, func(i int) (string, string) { return fmt.Sprintf("ns-%d", i), "app-0" }},
		{"ten shards", 10, func(i int) (string, string) { return "default", fmt.Sprintf("job-%d-abc", i) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n = 3000
			counts := make([]int, c.total)
			for i := range n {
				ns, pod := c.pod(i)
				s := Of(ns, pod, c.total)
				if s < 0 || s >= c.total {
					t.Fatalf("Of(%q, %q, %d) = %d, out of range", ns, pod, c.total, s)
				}
				counts[s]++
			}
			// A uniform assignment has a standard deviation of sqrt(n p (1-p)) per shard (26
			// for 3 shards of 3,000); 4 of them is far beyond chance, well within "fair".
			mean := float64(n) / float64(c.total)
			p := 1 / float64(c.total)
			slack := 4 * math.Sqrt(n*p*(1-p))
			for i, k := range counts {
				if math.Abs(float64(k)-mean) > slack {
					t.Errorf("shard %d/%d got %d of %d pods, want %.0f ± %.0f (all: %v)", i, c.total, k, n, mean, slack, counts)
				}
			}
		})
	}
}

func TestShard(t *testing.T) {
	for _, c := range []struct {
		s       Shard
		enabled bool
		err     string
	}{
		{Shard{}, false, "--total-shards must be at least 1, got 0"},
		{Shard{Index: 0, Total: 1}, false, ""},
		{Shard{Index: 2, Total: 3}, true, ""},
		{Shard{Index: 3, Total: 3}, true, "--shard-index 3 is not a shard of --total-shards 3: use 0 to 2"},
		{Shard{Index: -1, Total: 3}, true, "--shard-index -1 is not a shard of --total-shards 3: use 0 to 2"},
		{Shard{Index: 1, Total: 1}, false, "--shard-index 1 is not a shard of --total-shards 1: use 0 to 0"},
	} {
		if c.s.Enabled() != c.enabled {
			t.Errorf("%+v.Enabled() = %v", c.s, !c.enabled)
		}
		err := c.s.Validate()
		if (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("%+v.Validate() = %v, want %q", c.s, err, c.err)
		}
	}
}

// Every pod is owned by exactly one shard of a total, and by the only one when not sharded.
func TestOwnsExactlyOne(t *testing.T) {
	for _, total := range []int{1, 2, 3, 7} {
		for i := range 200 {
			ns, pod := "ns", fmt.Sprintf("p-%d", i)
			owners := 0
			for idx := range total {
				if (Shard{Index: idx, Total: total}).Owns(ns, pod) {
					owners++
				}
			}
			if owners != 1 {
				t.Fatalf("%s/%s has %d owners among %d shards", ns, pod, owners, total)
			}
		}
	}
	if !(Shard{}).Owns("any", "pod") {
		t.Fatal("the zero Shard must own every pod")
	}
}
