// Package compact writes values into one string and reads them back: varints, strings prefixed by
// their length, times. What a run holds by the ten thousand (a namespace's checkpoints, the listed
// pods) is held this way: one allocation instead of a struct and its strings allocated apart.
package compact

import (
	"encoding/binary"
	"slices"
	"strings"
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

// Token appends s, an identifier: a UID in its canonical form (8-4-4-4-12 lowercase hex digits)
// takes 17 bytes instead of 37, a container ID (a runtime's scheme and 64 hex digits) 35 instead
// of 78 (47 for a scheme this package does not know); anything else is written as String writes
// it.
func Token(b []byte, s string) []byte {
	if isUUID(s) {
		b = append(b, tokenUUID)
		for i := 0; i < len(s); i += 2 {
			if s[i] == '-' {
				i++
			}
			b = append(b, unhex(s[i])<<4|unhex(s[i+1]))
		}
		return b
	}
	// The longest tail of lowercase hex digits of even length: most container IDs are one
	// after their runtime's scheme ("containerd://").
	tail := len(s)
	for tail > 0 && isHex(s[tail-1]) {
		tail--
	}
	if (len(s)-tail)%2 == 1 {
		tail++
	}
	if len(s)-tail < 16 {
		return String(append(b, tokenPlain), s)
	}
	if i := slices.Index(schemes[:], s[:tail]); i >= 0 {
		b = append(b, tokenScheme, byte(i))
	} else {
		b = String(append(b, tokenHexTail), s[:tail])
	}
	b = binary.AppendUvarint(b, uint64((len(s)-tail)/2))
	for i := tail; i < len(s); i += 2 {
		b = append(b, unhex(s[i])<<4|unhex(s[i+1]))
	}
	return b
}

const (
	tokenPlain = iota
	tokenUUID
	tokenHexTail
	tokenScheme // a hex tail after one of schemes, by its index
)

// schemes are the container runtimes' prefixes of container IDs (ContainerStatus.ContainerID).
var schemes = [...]string{"containerd://", "cri-o://", "docker://"}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// isHex is true of lowercase hex digits only: an uppercase one would not read back as written.
func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
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

// Token reads what Token wrote. A UID or a hex tail is a new string; anything else shares the
// packed string's memory.
func (r *Reader) Token() string {
	switch tag := r.Byte(); tag {
	case tokenUUID:
		var out [36]byte
		j := 0
		for k := range 16 {
			if k == 4 || k == 6 || k == 8 || k == 10 {
				out[j] = '-'
				j++
			}
			c := r.Byte()
			out[j], out[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
			j += 2
		}
		return string(out[:])
	case tokenHexTail, tokenScheme:
		var prefix string
		if tag == tokenScheme {
			prefix = schemes[r.Byte()]
		} else {
			prefix = r.String()
		}
		n := int(r.Uvarint())
		var out strings.Builder
		out.Grow(len(prefix) + 2*n)
		out.WriteString(prefix)
		for range n {
			c := r.Byte()
			out.WriteByte(hexDigits[c>>4])
			out.WriteByte(hexDigits[c&0xf])
		}
		return out.String()
	}
	return r.String()
}

const hexDigits = "0123456789abcdef"

// SkipToken reads past what Token wrote.
func (r *Reader) SkipToken() {
	switch r.Byte() {
	case tokenUUID:
		r.i += 16
	case tokenHexTail:
		r.SkipString()
		r.i += int(r.Uvarint())
	case tokenScheme:
		r.i++
		r.i += int(r.Uvarint())
	default:
		r.SkipString()
	}
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
