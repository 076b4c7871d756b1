package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestPackedRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 30, 7, 1, 2, 123456789, time.UTC)
	tests := []struct {
		name string
		cp   Checkpoint
	}{
		{name: "zero"},
		{name: "running", cp: Checkpoint{PodUID: "0f8e5c1a-3c1e-4f7e-9d2b-7a1c2b3d4e5f", Instance: "containerd://abc", Since: at.Truncate(time.Second),
			Skip: 3, Hash: Hash(math.MaxUint64), First: 1, Last: at, Ties: 2, Begin: at.Add(-time.Hour), Size: 1 << 40, Lines: 7}},
		{name: "complete", cp: Checkpoint{Instance: "containerd://abc", Complete: "containerd://abc", Last: at}},
		{name: "complete, another instance", cp: Checkpoint{Instance: "containerd://abc", Complete: "containerd://def"}},
		{name: "gone, archived, after a rotation", cp: Checkpoint{Instance: "x", Gone: at, Archive: 12, After: true}},
		{name: "negative and extreme numbers", cp: Checkpoint{Skip: -1, Ties: math.MinInt64, Size: math.MaxInt64, Archive: -5, Lines: math.MinInt64 + 1}},
		{name: "times far out", cp: Checkpoint{Since: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), Last: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			Begin: time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pack(tt.cp).unpack(); got != tt.cp {
				t.Errorf("unpacked %+v\nwant     %+v", got, tt.cp)
			}
		})
	}
}

// TestPackedRandom packs random checkpoints: every field, times in any zone and with a
// monotonic reading (time.Now) come back equal, in UTC.
func TestPackedRandom(t *testing.T) {
	// A field added to Checkpoint must be added to pack and unpack, and here.
	if n := reflect.TypeFor[Checkpoint]().NumField(); n != 15 {
		t.Fatalf("Checkpoint has %d fields; pack, unpack and this test know 15", n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("x", -7*3600-1800)}
	str := func() string {
		b := make([]byte, rng.IntN(3)*rng.IntN(90))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	tm := func() time.Time {
		switch rng.IntN(4) {
		case 0:
			return time.Time{}
		case 1:
			return time.Now()
		}
		return time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])
	}
	num := func() int64 { return int64(rng.Uint64()) >> rng.IntN(64) }
	// UIDs and container IDs as the API gives them, which the packing holds as bytes, or anything.
	uid := func() string {
		if rng.IntN(2) == 0 {
			return str()
		}
		return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&(1<<48-1))
	}
	instance := func() string {
		if rng.IntN(2) == 0 {
			return str()
		}
		return fmt.Sprintf("containerd://%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
	}
	for range 20000 {
		cp := Checkpoint{PodUID: uid(), Instance: instance(), Since: tm(), Skip: num(), Hash: Hash(rng.Uint64()), First: Hash(rng.Uint64()),
			Last: tm(), Ties: num(), After: rng.IntN(2) == 0, Begin: tm(), Gone: tm(), Archive: int(num()), Size: num(), Lines: num()}
		switch rng.IntN(3) {
		case 0:
			cp.Complete = cp.Instance
		case 1:
			cp.Complete = instance()
		}
		got := pack(cp).unpack()
		want := cp
		for _, t := range []*time.Time{&want.Since, &want.Last, &want.Begin, &want.Gone} {
			*t = t.UTC().Round(0)
		}
		if got != want {
			t.Fatalf("unpacked %+v\nwant     %+v", got, want)
		}
	}
}
