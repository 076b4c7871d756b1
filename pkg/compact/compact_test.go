package compact

import (
	"encoding/binary"
	"math"
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
