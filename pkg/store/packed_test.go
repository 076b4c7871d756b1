package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
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
		{name: "complete, confirmed", cp: Checkpoint{Instance: "containerd://abc", Complete: "containerd://abc", Confirmed: true, Last: at}},
		{name: "complete, another instance, confirmed", cp: Checkpoint{Instance: "containerd://abc", Complete: "containerd://def", Confirmed: true}},
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
	if n := reflect.TypeFor[Checkpoint]().NumField(); n != 16 {
		t.Fatalf("Checkpoint has %d fields; pack, unpack and this test know 16", n)
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
			Last: tm(), Ties: num(), After: rng.IntN(2) == 0, Confirmed: rng.IntN(2) == 0, Begin: tm(), Gone: tm(), Archive: int(num()), Size: num(), Lines: num()}
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

func mustGet(t *testing.T, m cpMap, k containerKey) Checkpoint {
	t.Helper()
	p, ok := m.get(k)
	if !ok {
		t.Fatalf("no checkpoint for %v", k)
	}
	return p.unpack()
}

// TestCpMapRandom puts, replaces and deletes checkpoints at random and compares the map with a
// plain one after every step: lookups, the count, and what all lists.
func TestCpMapRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// Few names, so that keys repeat; one a prefix of another, and names with dots, dashes and
	// the longest a name may be, so that the key's separator is tested.
	pods := []string{"p", "p-1", "p.1", "pp", strings.Repeat("x", 253), "web-7c9f-abcde"}
	containers := []string{"c", "c1", "app", strings.Repeat("y", 63)}
	key := func() containerKey {
		return containerKey{pods[rng.IntN(len(pods))], containers[rng.IntN(len(containers))]}
	}
	at := time.Date(2026, 11, 30, 7, 1, 2, 0, time.UTC)
	m, want := cpMap{}, map[containerKey]Checkpoint{}
	for i := range 5000 {
		k := key()
		switch rng.IntN(4) {
		case 0:
			m.delete(k)
			delete(want, k)
		default:
			cp := Checkpoint{PodUID: fmt.Sprint(i), Instance: "containerd://" + fmt.Sprint(rng.Uint64()), Since: at.Add(time.Duration(i) * time.Second),
				Last: at.Add(time.Duration(i)*time.Second + time.Duration(rng.IntN(1e9))), Lines: int64(i)}
			m.put(k, cp)
			want[k] = cp
		}
		if len(m) != len(want) {
			t.Fatalf("step %d: %d checkpoints, want %d", i, len(m), len(want))
		}
		probe := key()
		p, ok := m.get(probe)
		if w, wok := want[probe]; ok != wok || ok && p.unpack() != w {
			t.Fatalf("step %d: get %v: %v %+v, want %v %+v", i, probe, ok, p.unpack(), wok, w)
		}
	}
	got := map[containerKey]Checkpoint{}
	m.all(func(k containerKey, p packed) { got[k] = p.unpack() })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("all listed %d checkpoints, want %d", len(got), len(want))
	}
}

func TestCpMapGetDoesNotAllocate(t *testing.T) {
	m := cpMap{}
	k := containerKey{"web-7c9f-abcde", "app"}
	m.put(k, Checkpoint{Instance: "containerd://abc"})
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := m.get(k); !ok {
			t.Fatal("not found")
		}
	}); n != 0 {
		t.Errorf("get allocates %v times", n)
	}
}

// TestCpMapReplaceFrees replaces each container's checkpoint many times: the map must not keep
// the strings it replaced (a key assigned again would keep the first string alive if the map kept
// its first key).
func TestCpMapReplaceFrees(t *testing.T) {
	const containers, saves = 2000, 20
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	m := cpMap{}
	cp := Checkpoint{PodUID: "0f8e5c1a-3c1e-4f7e-9d2b-7a1c2b3d4e5f", Instance: "containerd://" + strings.Repeat("ab", 32)}
	for i := range containers {
		m.put(containerKey{fmt.Sprint("pod-", i), "app"}, cp)
	}
	once := live()
	for s := range saves {
		for i := range containers {
			cp.Lines = int64(s)
			m.put(containerKey{fmt.Sprint("pod-", i), "app"}, cp)
		}
	}
	// One more string per container would be 2000 x 112 bytes; held, the replaced ones would be 20 times that.
	if grown := int64(live()) - int64(once); grown > containers*112 {
		t.Errorf("heap grew by %d bytes after replacing %d checkpoints %d times", grown, containers, saves)
	}
	runtime.KeepAlive(m)
}

// TestPackedSize keeps the memory a running container's checkpoint takes in check: with its key,
// one allocation of at most 128 bytes.
func TestPackedSize(t *testing.T) {
	at := time.Date(2026, 11, 30, 7, 1, 2, 123456789, time.UTC)
	cp := Checkpoint{PodUID: "0f8e5c1a-3c1e-4f7e-9d2b-7a1c2b3d4e5f", Instance: "containerd://" + strings.Repeat("0123456789abcdef", 4),
		Since: at.Truncate(time.Second), Last: at.Add(3 * time.Second), Begin: at.Add(-26 * time.Hour), Hash: 1 << 60, First: 1 << 61,
		Ties: 1, Size: 1 << 30, Lines: 1 << 22}
	k := containerKey{"web-7c9f5d8b4-abcde", "app"}
	b := cp.appendPacked(appendKey(nil, k))
	if len(b) > 128 {
		t.Errorf("key and checkpoint take %d bytes, want at most 128", len(b))
	}
	t.Logf("key and checkpoint: %d bytes, the checkpoint %d", len(b), len(b)-len(appendKey(nil, k)))
}
