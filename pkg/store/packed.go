package store

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/compact"
)

// cpMap holds a namespace's checkpoints by container, each key and its checkpoint in one string:
// "pod/container" (names never hold a slash: plainName), then the packed checkpoint, the map's key
// a prefix of that string and its value the rest. A run holds the checkpoint of every container of
// each namespace it writes to; keyed by two strings, a container took a 48-byte map slot and two
// allocations for its names besides the checkpoint's, about 240 bytes in all; this way one
// allocation and a 32-byte slot, about 180.
type cpMap map[string]packed

// appendKey appends the map's key of k.
func appendKey(b []byte, k containerKey) []byte {
	return append(append(append(b, k.pod...), '/'), k.container...)
}

// get returns the packed checkpoint of k.
func (m cpMap) get(k containerKey) (packed, bool) {
	var buf [128]byte
	// A lookup by string(bytes) does not allocate the string.
	p, ok := m[string(appendKey(buf[:0], k))]
	return p, ok
}

// put sets the checkpoint of k. Assigning to a string key that is there replaces the key too, so
// the string of the checkpoint replaced is let go.
func (m cpMap) put(k containerKey, cp Checkpoint) {
	var buf [256]byte
	b := appendKey(buf[:0], k)
	n := len(b)
	s := string(cp.appendPacked(b)) // the one allocation, of its exact length
	m[s[:n]] = packed(s[n:])
}

func (m cpMap) delete(k containerKey) {
	var buf [128]byte
	delete(m, string(appendKey(buf[:0], k)))
}

// all calls fn for every container, in no order.
func (m cpMap) all(fn func(k containerKey, p packed)) {
	for key, p := range m {
		pod, container, _ := strings.Cut(key, "/")
		fn(containerKey{pod, container}, p)
	}
}

// packed is a Checkpoint as a namespace's checkpoints hold it in memory: its fields as varints
// and its strings inline. As a struct (208 bytes, five times of 24, three strings allocated
// apart) it took about 450 bytes a container with the map; packed, 100-120 bytes. It is never
// written anywhere: the file holds JSON records.
type packed string

// Complete is mostly empty or Instance (a finished container's log stored to its end): one byte,
// which also holds Confirmed.
const (
	completeNone = iota
	completeInstance
	completeOther
	// completeConfirmed is added for Confirmed.
	completeConfirmed = 4
)

// appendPacked appends cp packed. The times are one byte of which are zero (Begin and Gone mostly
// are), then Since's second, and the others' seconds as their distance from it (a few bytes: Last
// is within seconds of Since, Begin within the instance's life), each with its nanoseconds.
func (cp *Checkpoint) appendPacked(b []byte) []byte {
	b = compact.Token(b, cp.PodUID)
	b = compact.Token(b, cp.Instance)
	var confirmed byte
	if cp.Confirmed {
		confirmed = completeConfirmed
	}
	switch cp.Complete {
	case "":
		b = append(b, completeNone|confirmed)
	case cp.Instance:
		b = append(b, completeInstance|confirmed)
	default:
		b = compact.String(append(b, completeOther|confirmed), cp.Complete)
	}
	times := [...]*time.Time{&cp.Since, &cp.Last, &cp.Begin, &cp.Gone}
	var zero byte
	for i, t := range times {
		if t.IsZero() {
			zero |= 1 << i
		}
	}
	b = append(b, zero)
	var base int64
	for i, t := range times {
		if zero&(1<<i) != 0 {
			continue
		}
		b = binary.AppendVarint(b, t.Unix()-base)
		b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
		if i == 0 {
			base = t.Unix()
		}
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(cp.Hash))
	b = binary.LittleEndian.AppendUint64(b, uint64(cp.First))
	var after byte
	if cp.After {
		after = 1
	}
	b = append(b, after)
	for _, n := range [...]int64{cp.Skip, cp.Ties, int64(cp.Archive), cp.Size, cp.Lines} {
		b = binary.AppendVarint(b, n)
	}
	return b
}

// pack is cp packed on its own.
func pack(cp Checkpoint) packed {
	var buf [192]byte
	return packed(cp.appendPacked(buf[:0]))
}

// unpack returns the checkpoint. Its times are in UTC.
func (p packed) unpack() Checkpoint {
	r := compact.NewReader(string(p))
	var cp Checkpoint
	cp.PodUID = r.Token()
	cp.Instance = r.Token()
	complete := r.Byte()
	cp.Confirmed = complete&completeConfirmed != 0
	switch complete &^ completeConfirmed {
	case completeInstance:
		cp.Complete = cp.Instance
	case completeOther:
		cp.Complete = r.String()
	}
	zero := r.Byte()
	var base int64
	for i, t := range [...]*time.Time{&cp.Since, &cp.Last, &cp.Begin, &cp.Gone} {
		if zero&(1<<i) != 0 {
			continue
		}
		sec := r.Varint() + base
		*t = time.Unix(sec, int64(r.Uvarint())).UTC()
		if i == 0 {
			base = sec
		}
	}
	cp.Hash = Hash(r.Uint64())
	cp.First = Hash(r.Uint64())
	cp.After = r.Byte() == 1
	for _, n := range [...]*int64{&cp.Skip, &cp.Ties, nil, &cp.Size, &cp.Lines} {
		v := r.Varint()
		if n == nil {
			cp.Archive = int(v)
			continue
		}
		*n = v
	}
	return cp
}
