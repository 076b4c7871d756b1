// Package compact writes values into one string and reads them back: varints, strings prefixed by
// their length, times. What a run holds by the ten thousand (a namespace's checkpoints, the listed
// pods) is held this way: one allocation instead of a struct and its strings allocated apart.
package compact

import (
	"encoding/binary"
	"time"
)

// String appends s, prefixed by its length.
func String(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// Time appends t: its instant and whether it is zero, in UTC or local (as the API's decoders
// return times). Any other location reads back as local; the monotonic reading is dropped.
func Time(b []byte, t time.Time) []byte {
	switch {
	case t.IsZero():
		return append(b, timeZero)
	case t.Location() == time.UTC:
		b = append(b, timeUTC)
	default:
		b = append(b, timeLocal)
	}
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

const (
	timeZero = iota
	timeUTC
	timeLocal
)

// Reader reads what the functions of this package wrote, in the order they wrote it. It does not
// check: it reads only strings its own package's callers made.
type Reader struct {
	s string
	i int
}

// NewReader returns a reader at the start of s.
func NewReader(s string) *Reader { return &Reader{s: s} }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	r.i++
	return r.s[r.i-1]
}

// Uvarint reads what binary.AppendUvarint wrote.
func (r *Reader) Uvarint() uint64 {
	var v uint64
	for shift := 0; ; shift += 7 {
		c := r.Byte()
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
}

// Varint reads what binary.AppendVarint wrote.
func (r *Reader) Varint() int64 {
	u := r.Uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// Uint64 reads what binary.LittleEndian.AppendUint64 wrote. Not through binary's functions: they
// take a []byte, and converting the string would allocate.
func (r *Reader) Uint64() uint64 {
	var v uint64
	for k := range 8 {
		v |= uint64(r.s[r.i+k]) << (8 * k)
	}
	r.i += 8
	return v
}

// String reads what String wrote. It shares the packed string's memory.
func (r *Reader) String() string {
	n := int(r.Uvarint())
	r.i += n
	return r.s[r.i-n : r.i]
}

// SkipString reads past what String wrote.
func (r *Reader) SkipString() { r.i += int(r.Uvarint()) }

// Time reads what Time wrote.
func (r *Reader) Time() time.Time {
	kind := r.Byte()
	if kind == timeZero {
		return time.Time{}
	}
	t := time.Unix(r.Varint(), int64(r.Uvarint()))
	if kind == timeUTC {
		return t.UTC()
	}
	return t.Local()
}
