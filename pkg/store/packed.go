package store

import (
	"encoding/binary"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/compact"
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
	b = compact.Token(b, cp.PodUID)
	b = compact.Token(b, cp.Instance)
	switch cp.Complete {
	case "":
		b = append(b, completeNone)
	case cp.Instance:
		b = append(b, completeInstance)
	default:
		b = compact.String(append(b, completeOther), cp.Complete)
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

// unpack returns the checkpoint. Its times are in UTC.
func (p packed) unpack() Checkpoint {
	r := compact.NewReader(string(p))
	var cp Checkpoint
	cp.PodUID = r.Token()
	cp.Instance = r.Token()
	switch r.Byte() {
	case completeInstance:
		cp.Complete = cp.Instance
	case completeOther:
		cp.Complete = r.String()
	}
	for _, t := range []*time.Time{&cp.Since, &cp.Last, &cp.Begin, &cp.Gone} {
		sec := r.Varint()
		*t = time.Unix(sec, int64(r.Uvarint())).UTC()
	}
	cp.Hash = Hash(r.Uint64())
	cp.First = Hash(r.Uint64())
	cp.After = r.Byte() == 1
	for _, n := range []*int64{&cp.Skip, &cp.Ties, nil, &cp.Size, &cp.Lines} {
		v := r.Varint()
		if n == nil {
			cp.Archive = int(v)
			continue
		}
		*n = v
	}
	return cp
}
