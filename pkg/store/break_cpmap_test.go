package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Break attempt on the checkpoint map (commit 0c1605b): names of any allowed bytes up to the
// 253-byte limit, checkpoints with any strings, times and numbers, against a plain map and the
// previous marshalRecords.

func breakName(rng *rand.Rand, utf8 bool) string {
	n := 1 + rng.IntN(253)
	switch rng.IntN(4) {
	case 0:
		n = 253
	case 1:
		n = 1 + rng.IntN(3)
	}
	b := make([]byte, 0, n)
	const safe = "abcxyz0123456789-._ ~:@+=%"
	for len(b) < n {
		var c byte
		if utf8 {
			c = safe[rng.IntN(len(safe))]
		} else {
			c = byte(rng.IntN(256))
		}
		if c == '/' || c == '\\' || c == 0 || len(b) == 0 && c == '.' {
			continue
		}
		b = append(b, c)
	}
	if !plainName(string(b)) {
		panic(fmt.Sprintf("%q", b))
	}
	return string(b)
}

func breakCheckpoint(rng *rand.Rand, jsonSafe bool) Checkpoint {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("odd", -7*3600-1800), time.FixedZone("e", 14*3600)}
	if !jsonSafe {
		// An offset with seconds: JSON (RFC 3339) drops them, so a line written by write() in
		// such a zone reads back 17 s off. That was so before the change too; not tested on files.
		zones = append(zones, time.FixedZone("secs", -7*3600-1800-17))
	}
	tm := func() time.Time {
		switch rng.IntN(6) {
		case 0:
			return time.Time{}
		case 1:
			return time.Now()
		case 2:
			return time.Time{}.In(zones[rng.IntN(len(zones))]) // zero, in a zone
		case 3: // the ends of what JSON holds
			if rng.IntN(2) == 0 {
				return time.Date(0, 1, 1, 0, 0, 0, rng.IntN(1e9), time.UTC).Add(time.Duration(rng.IntN(1e6)) * time.Second)
			}
			return time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC).Add(-time.Duration(rng.IntN(1e6)) * time.Second)
		}
		lo, hi := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		if !jsonSafe && rng.IntN(3) == 0 {
			lo, hi = -1<<61, 1<<61
		}
		return time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])
	}
	str := func() string {
		switch rng.IntN(5) {
		case 0:
			return ""
		case 1:
			return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&(1<<48-1))
		case 2:
			s := []string{"containerd://", "cri-o://", "docker://", "kwok://", ""}[rng.IntN(5)]
			n := rng.IntN(70)
			for range n {
				s += string("0123456789abcdefABCDEF"[rng.IntN(22)])
			}
			return s
		}
		return breakName(rng, jsonSafe)
	}
	num := func() int64 { return int64(rng.Uint64()) >> rng.IntN(64) }
	cp := Checkpoint{PodUID: str(), Instance: str(), Since: tm(), Skip: num(), Hash: Hash(rng.Uint64()), First: Hash(rng.Uint64()),
		Last: tm(), Ties: num(), After: rng.IntN(2) == 0, Begin: tm(), Gone: tm(), Archive: int(num()), Size: num(), Lines: num()}
	switch rng.IntN(3) {
	case 0:
		cp.Complete = cp.Instance
	case 1:
		cp.Complete = str()
	}
	return cp
}

// utc is cp as unpack must return it: its times in UTC, no monotonic reading.
func utc(cp Checkpoint) Checkpoint {
	for _, t := range []*time.Time{&cp.Since, &cp.Last, &cp.Begin, &cp.Gone} {
		*t = t.UTC().Round(0)
		if t.IsZero() {
			*t = time.Time{}
		}
	}
	return cp
}

// oldMarshalRecords is marshalRecords before the change, over a plain map.
func oldMarshalRecords(cps map[containerKey]Checkpoint) []byte {
	keys := make([]containerKey, 0, len(cps))
	for k := range cps {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	var b []byte
	for _, k := range keys {
		line, _ := json.Marshal(record{Pod: k.pod, Container: k.container, Checkpoint: pack(cps[k]).unpack()})
		b = append(append(b, line...), '\n')
	}
	return b
}

func TestBreakCpMapModel(t *testing.T) {
	for _, jsonSafe := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(21, 22))
		var pods, containers []string
		for range 12 {
			pods = append(pods, breakName(rng, jsonSafe))
			containers = append(containers, breakName(rng, jsonSafe))
		}
		// Prefix-related names: "a" and "a/b" cannot be, but "ab"/"a" and 253-byte ones sharing 252.
		pods = append(pods, "a", "ab", strings.Repeat("p", 253), strings.Repeat("p", 252)+"q")
		containers = append(containers, "a", "ab", strings.Repeat("c", 253), "b")
		key := func() containerKey {
			return containerKey{pods[rng.IntN(len(pods))], containers[rng.IntN(len(containers))]}
		}
		m, want := cpMap{}, map[containerKey]Checkpoint{}
		for i := range 20000 {
			k := key()
			switch rng.IntN(5) {
			case 0:
				m.delete(k)
				delete(want, k)
			default:
				cp := breakCheckpoint(rng, jsonSafe)
				m.put(k, cp)
				want[k] = utc(cp)
			}
			if len(m) != len(want) {
				t.Fatalf("step %d: %d entries, want %d", i, len(m), len(want))
			}
			for range 2 {
				probe := key()
				p, ok := m.get(probe)
				w, wok := want[probe]
				if ok != wok {
					t.Fatalf("step %d: get %q: %v, want %v", i, probe, ok, wok)
				}
				if ok {
					if got := p.unpack(); got != w {
						t.Fatalf("step %d: get %q:\n%+v\nwant\n%+v", i, probe, got, w)
					}
				}
			}
		}
		got := map[containerKey]Checkpoint{}
		m.all(func(k containerKey, p packed) { got[k] = p.unpack() })
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("all: %d entries, want %d", len(got), len(want))
		}
		if !jsonSafe {
			continue
		}
		b, err := marshalRecords(m)
		if err != nil {
			t.Fatal(err)
		}
		if old := oldMarshalRecords(want); !bytes.Equal(b, old) {
			t.Fatalf("marshalRecords differs from before the change:\n%s\nwant\n%s", b, old)
		}
		// And each record parses back to the checkpoint.
		for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			r, err := parseRecord(line)
			if err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
			w := want[containerKey{r.Pod, r.Container}]
			if g := utc(r.Checkpoint); g != w {
				t.Fatalf("line %d parsed %+v\nwant %+v", i, g, w)
			}
		}
	}
}

// remove with keys missing, repeated, and a rewrite that fails: the map is as before, and no
// entry appears for a key that had none.
func TestBreakRemoveMissingKeyFailedRewrite(t *testing.T) {
	dir := t.TempDir()
	faults := &faultFS{}
	d, err := Open(dir, false, faults.option(), noSync())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	long := strings.Repeat("x", 253)
	l1 := mustOpenLog(t, d, "ns", long, "c") // a 253-byte container name makes a file name too long for the file system
	defer l1.Close()
	l2 := mustOpenLog(t, d, "ns", "p", "c2")
	defer l2.Close()
	at := time.Date(2026, 11, 30, 7, 1, 2, 5, time.FixedZone("z", 3600))
	cp1 := Checkpoint{Instance: "containerd://" + strings.Repeat("ab", 32), Since: at.Truncate(time.Second), Last: at, Lines: 1}
	cp2 := Checkpoint{Instance: "i2", Lines: 2, Gone: at}
	if err := l1.Commit(cp1); err != nil {
		t.Fatal(err)
	}
	if err := l2.Commit(cp2); err != nil {
		t.Fatal(err)
	}
	c := l1.cps
	faults.set("replace", errors.New("injected"))
	keys := []containerKey{{long, "c"}, {"p", "missing"}, {long, "c"}, {"nope", "c2"}}
	if err := c.remove(keys); err == nil {
		t.Fatal("remove: no error from the failed rewrite")
	}
	if len(c.cps) != 2 {
		t.Fatalf("%d checkpoints after the failed remove, want 2", len(c.cps))
	}
	if _, ok := c.cps.get(containerKey{"p", "missing"}); ok {
		t.Fatal("a checkpoint appeared for a key that had none")
	}
	if got := mustGet(t, c.cps, containerKey{long, "c"}); got != utc(cp1) {
		t.Fatalf("restored %+v, want %+v", got, utc(cp1))
	}
	faults.set("replace", nil)
	if err := c.remove(keys); err != nil {
		t.Fatal(err)
	}
	if len(c.cps) != 1 {
		t.Fatalf("%d checkpoints after remove, want 1", len(c.cps))
	}
	if got := mustGet(t, c.cps, containerKey{"p", "c2"}); got != utc(cp2) {
		t.Fatalf("kept %+v, want %+v", got, utc(cp2))
	}
}

// Many saves of containers with long and odd names, through compactions, and read again by a
// new run: every checkpoint is the last saved.
func TestBreakCompactionManySavesLongNames(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir)
	rng := rand.New(rand.NewPCG(31, 32))
	type pc struct{ pod, c string }
	var names []pc
	for range 7 {
		c := breakName(rng, true)
		names = append(names, pc{breakName(rng, true), c[:min(len(c), 63)]}) // "<container>.log" must fit a file name
	}
	names = append(names, pc{strings.Repeat("p", 253), strings.Repeat("c", 63)}, pc{strings.Repeat("p", 253), "c"})
	logs := make([]*Log, len(names))
	for i, n := range names {
		logs[i] = mustOpenLog(t, d, "ns", n.pod, n.c)
	}
	last := make([]Checkpoint, len(names))
	for n := range 3*compactMin + 17 {
		i := rng.IntN(len(names))
		cp := breakCheckpoint(rng, true)
		cp.Archive, cp.Gone, cp.Size = 0, time.Time{}, 0 // an open log's checkpoint: not archived, its file as long as it is
		if cp.Instance == "" {
			cp.Instance = "i" // an empty one with no lines stored means "none" to open
		}
		if err := logs[i].Commit(cp); err != nil {
			t.Fatal(err)
		}
		last[i] = utc(cp)
		if got := mustGet(t, logs[i].cps.cps, containerKey{names[i].pod, names[i].c}); got != last[i] {
			t.Fatalf("save %d: in memory %+v\nwant %+v", n, got, last[i])
		}
	}
	for _, l := range logs {
		l.Close()
	}
	d.Close()
	d = mustOpen(t, dir)
	defer d.Close()
	for i, n := range names {
		if last[i] == (Checkpoint{}) {
			continue
		}
		got := checkpointOf(t, d, "ns", n.pod, n.c)
		if got == nil || utc(*got) != last[i] {
			t.Fatalf("%d: read back %+v\nwant %+v", i, got, last[i])
		}
	}
}

// Times at the ends of what time.Time holds: the distance from Since overflows int64 and must
// wrap back; a time at the zero instant in another zone is zero.
func TestBreakPackedExtremeTimes(t *testing.T) {
	ext := []time.Time{
		time.Unix(1<<63-1, 999999999), time.Unix(-1<<63, 0), time.Unix(1<<62, 1), time.Unix(-1<<62, 999999999),
		time.Time{}.Add(-time.Nanosecond), time.Time{}.Add(time.Nanosecond), time.Time{}.In(time.FixedZone("x", 3600)),
		time.Unix(0, 0), time.Unix(-1, 999999999), time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1e9, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, a := range ext {
		for _, b := range ext {
			for _, c := range ext {
				cp := Checkpoint{Since: a, Last: b, Begin: c, Gone: a, Instance: "containerd://" + strings.Repeat("f", 64)}
				got, want := pack(cp).unpack(), utc(cp)
				if got != want {
					t.Fatalf("%v %v %v:\ngot  %+v\nwant %+v", a, b, c, got, want)
				}
				for i, tt := range []time.Time{got.Since, got.Last, got.Begin, got.Gone} {
					w := []time.Time{a, b, c, a}[i]
					if !tt.Equal(w) || tt.Location() != time.UTC {
						t.Fatalf("time %d: %v, want %v in UTC", i, tt, w)
					}
				}
			}
		}
	}
}

// Keys longer than the stack buffers (253-byte pods): replacing and deleting lets go of the old
// strings too.
func TestBreakCpMapLongKeysFreed(t *testing.T) {
	const containers, saves = 1000, 20
	live := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	pod := func(i int) string { s := fmt.Sprint(i, "-"); return s + strings.Repeat("p", 253-len(s)) }
	m := cpMap{}
	cp := Checkpoint{Instance: "containerd://" + strings.Repeat("ab", 32)}
	for i := range containers {
		m.put(containerKey{pod(i), strings.Repeat("c", 63)}, cp)
	}
	once := live()
	for s := range saves {
		for i := range containers {
			cp.Lines = int64(s)
			m.put(containerKey{pod(i), strings.Repeat("c", 63)}, cp)
		}
	}
	entry := int64(253 + 1 + 63 + 60)
	if grown := live() - once; grown > containers*entry {
		t.Errorf("heap grew by %d bytes after replacing %d long-keyed checkpoints %d times", grown, containers, saves)
	}
	for i := range containers {
		m.delete(containerKey{pod(i), strings.Repeat("c", 63)})
	}
	if len(m) != 0 {
		t.Fatalf("%d left after deleting all", len(m))
	}
	if shrunk := once - live(); shrunk < containers*entry/2 {
		t.Errorf("heap shrank by only %d bytes after deleting %d entries of ~%d bytes", shrunk, containers, entry)
	}
	runtime.KeepAlive(m)
}
