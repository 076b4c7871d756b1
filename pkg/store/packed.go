package store

import (
	"encoding/binary"
	"time"
)

// packed is a Checkpoint as a namespace's checkpoints hold it in memory: one string, its fields
// as varints and its strings inline. A run holds the checkpoint of every container of each
// namespace it writes to, and as a struct (208 bytes, five times of 24, three strings allocated
// apart) in a map it took about 450 bytes a container; packed, about half. It is never written
// anywhere: the file holds JSON records.
type packed string

// Complete is mostly empty or Instance (a finished container's log stored to its end): one byte.
const (
	completeNone = iota
	completeInstance
	completeOther
)

func pack(cp Checkpoint) packed {
	b := make([]byte, 0, 64+len(cp.PodUID)+len(cp.Instance))
	b = appendString(b, cp.PodUID)
	b = appendString(b, cp.Instance)
	switch cp.Complete {
	case "":
		b = append(b, completeNone)
	case cp.Instance:
		b = append(b, completeInstance)
	default:
		b = appendString(append(b, completeOther), cp.Complete)
	}
	for _, t := range []time.Time{cp.Since, cp.Last, cp.Begin, cp.Gone} {
		b = binary.AppendVarint(b, t.Unix())
		b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(cp.Hash))
	b = binary.LittleEndian.AppendUint64(b, uint64(cp.First))
	var after byte
	if cp.After {
		after = 1
	}
	b = append(b, after)
	for _, n := range []int64{cp.Skip, cp.Ties, int64(cp.Archive), cp.Size, cp.Lines} {
		b = binary.AppendVarint(b, n)
	}
	return packed(b)
}

// unpack returns the checkpoint. Its strings share p's memory; its times are in UTC.
func (p packed) unpack() Checkpoint {
	r := unpacker{s: string(p)}
	var cp Checkpoint
	cp.PodUID = r.string()
	cp.Instance = r.string()
	switch r.byte() {
	case completeInstance:
		cp.Complete = cp.Instance
	case completeOther:
		cp.Complete = r.string()
	}
	for _, t := range []*time.Time{&cp.Since, &cp.Last, &cp.Begin, &cp.Gone} {
		sec := r.varint()
		*t = time.Unix(sec, int64(r.uvarint())).UTC()
	}
	cp.Hash = Hash(r.uint64())
	cp.First = Hash(r.uint64())
	cp.After = r.byte() == 1
	for _, n := range []*int64{&cp.Skip, &cp.Ties, nil, &cp.Size, &cp.Lines} {
		v := r.varint()
		if n == nil {
			cp.Archive = int(v)
			continue
		}
		*n = v
	}
	return cp
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// unpacker reads what pack wrote; p is only ever what pack returned, so it does not check.
type unpacker struct {
	s string
	i int
}

func (r *unpacker) byte() byte {
	r.i++
	return r.s[r.i-1]
}

func (r *unpacker) uvarint() uint64 {
	var v uint64
	for shift := 0; ; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
}

func (r *unpacker) varint() int64 {
	u := r.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (r *unpacker) uint64() uint64 {
	v := binary.LittleEndian.Uint64([]byte(r.s[r.i : r.i+8]))
	r.i += 8
	return v
}

func (r *unpacker) string() string {
	n := int(r.uvarint())
	r.i += n
	return r.s[r.i-n : r.i]
}
