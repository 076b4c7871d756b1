package compact

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	local := time.Date(2026, 3, 29, 1, 30, 0, 5, time.Local)
	tests := []struct {
		name string
		v    any
	}{
		{"empty string", ""},
		{"string", "containerd://0123"},
		{"long string", strings.Repeat("x", 300)}, // a length of two varint bytes
		{"zero varint", int64(0)},
		{"negative varint", int64(-1)},
		{"min varint", int64(math.MinInt64)},
		{"max varint", int64(math.MaxInt64)},
		{"max uvarint", uint64(math.MaxUint64)},
		{"zero time", time.Time{}},
		{"UTC time", time.Date(2026, 11, 30, 10, 0, 0, 999999999, time.UTC)},
		{"local time", local},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC)},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		{"far future", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each value between two strings: a reader that reads too much or too little shows.
			b := String(nil, "before")
			switch v := tt.v.(type) {
			case string:
				b = String(b, v)
			case int64:
				b = binary.AppendVarint(b, v)
			case uint64:
				b = binary.AppendUvarint(b, v)
			case time.Time:
				b = Time(b, v)
			}
			b = String(b, "after")
			r := NewReader(string(b))
			if s := r.String(); s != "before" {
				t.Fatalf("first string %q", s)
			}
			var got any
			switch tt.v.(type) {
			case string:
				got = r.String()
			case int64:
				got = r.Varint()
			case uint64:
				got = r.Uvarint()
			case time.Time:
				got = r.Time()
			}
			if !reflect.DeepEqual(got, tt.v) {
				t.Fatalf("read %#v, want %#v", got, tt.v)
			}
			if s := r.String(); s != "after" {
				t.Fatalf("last string %q", s)
			}
		})
	}
}

func TestReaderUint64AndSkip(t *testing.T) {
	b := String(nil, "skipped")
	b = binary.LittleEndian.AppendUint64(b, 0x0102030405060708)
	b = append(b, 0xff)
	r := NewReader(string(b))
	r.SkipString()
	if v := r.Uint64(); v != 0x0102030405060708 {
		t.Fatalf("uint64 %#x", v)
	}
	if v := r.Byte(); v != 0xff {
		t.Fatalf("byte %#x", v)
	}
}

// A time with a monotonic reading, or in a zone other than UTC and local, reads back as the same
// instant, local.
func TestTimeOtherLocations(t *testing.T) {
	zone := time.FixedZone("X", 3600)
	for _, in := range []time.Time{time.Now(), time.Date(2026, 1, 1, 0, 0, 0, 0, zone)} {
		got := NewReader(string(Time(nil, in))).Time()
		if !got.Equal(in) || got.Location() != time.Local {
			t.Errorf("%v read back as %v", in, got)
		}
	}
}

func TestToken(t *testing.T) {
	id := "3f1c6d0e9b2a4c5d8e7f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5"
	tests := []struct {
		s    string
		size int // bytes written
	}{
		{s: "", size: 2},
		{s: "0c4f6b1e-8d2a-4b7c-9e5f-1a2b3c4d5e6f", size: 17},
		{s: "0C4F6B1E-8D2A-4B7C-9E5F-1A2B3C4D5E6F", size: 38}, // uppercase: as written
		{s: "0c4f6b1e-8d2a-4b7c-9e5f-1a2b3c4d5e6", size: 37},  // one digit short
		{s: "0c4f6b1e_8d2a-4b7c-9e5f-1a2b3c4d5e6f", size: 38}, // not a UUID
		{s: "containerd://" + id, size: 1 + 1 + 1 + 32},       // a known scheme: its index
		{s: "cri-o://" + id, size: 1 + 1 + 1 + 32},
		{s: "kwok://" + id, size: 1 + 8 + 1 + 32},         // another scheme: spelled out
		{s: "containerd:/" + id, size: 1 + 13 + 1 + 32},   // not quite a known one
		{s: "cri-o://" + id[:63], size: 1 + 10 + 1 + 31},  // odd: the first digit stays in the prefix
		{s: "docker://" + id[:15], size: 1 + 1 + 24},      // too short a tail
		{s: "docker://" + id[:16], size: 1 + 1 + 1 + 8},   // 16 digits
		{s: id, size: 1 + 1 + 1 + 32},                     // all digits
		{s: "containerd://" + id + "G", size: 1 + 1 + 78}, // not hex at the end
		{s: "kwok://a1b2", size: 13},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			b := Token(nil, tt.s)
			if len(b) != tt.size {
				t.Errorf("%d bytes, want %d", len(b), tt.size)
			}
			b = String(b, "after")
			r := NewReader(string(b))
			if got := r.Token(); got != tt.s {
				t.Fatalf("read %q", got)
			}
			if s := r.String(); s != "after" {
				t.Fatalf("then %q", s)
			}
		})
	}
	// Random strings over an alphabet of hex digits, dashes and others, of any length.
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "0123456789abcdefABCDEF-:/xyz"
	for range 100000 {
		buf := make([]byte, rng.IntN(90))
		for i := range buf {
			buf[i] = alphabet[rng.IntN(len(alphabet))]
		}
		switch rng.IntN(4) {
		case 0:
			if len(buf) >= 36 {
				copy(buf, "0c4f6b1e-8d2a-4b7c-9e5f-1a2b3c4d5e6f")
				buf = buf[:36]
			}
		case 1:
			// A runtime's scheme, whole or cut short, before the random rest.
			scheme := schemes[rng.IntN(len(schemes))]
			buf = append([]byte(scheme[:len(scheme)-rng.IntN(3)]), buf...)
		}
		s := string(buf)
		b := String(Token(nil, s), "after")
		if got := NewReader(string(b)).Token(); got != s {
			t.Fatalf("%q read back as %q", s, got)
		}
		r := NewReader(string(b))
		r.SkipToken()
		if after := r.String(); after != "after" {
			t.Fatalf("%q: after skipping it, %q", s, after)
		}
	}
}
