package logline

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"
)

// shape is what the parser must accept whenever time.Parse does: the timestamps the kubelet and
// runtimes write (time.Parse also takes an offset of 60 minutes, which none writes).
var shape = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

// Timestamps near the shapes served (fractions of 0 to 10 digits, offsets, leap-ish dates, bytes
// just outside '0'-'9' such as '/' and ':' anywhere), each parsed by one Parser after lines that
// share its second or differ from it in one byte: the Parser accepts what time.Parse accepts of
// those shapes, nothing time.Parse refuses, and reads the same instant.
func TestBreakParserAgainstTimeParse(t *testing.T) {
	odd := []byte("/:0189.TZ+- a")
	dates := []string{"2024-02-29", "2023-02-29", "2024-02-30", "2100-02-29", "2000-02-29", "2024-12-31",
		"2024-13-01", "2024-00-10", "2024-01-00", "1970-01-01", "0000-01-01", "9999-12-31", "2024-04-31"}
	times := []string{"00:00:00", "23:59:59", "23:59:60", "24:00:00", "12:60:00", "09:09:09", "19:29:39"}
	zones := []string{"Z", "+00:00", "-00:00", "+01:00", "-00:30", "+23:59", "+24:00", "-12:60", "+14:00", "z", "+0100"}
	n := 20000
	if testing.Short() {
		n = 4000
	}
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 37))
		var p Parser
		prev := ""
		for i := range n {
			var ts string
			if prev != "" && rng.IntN(3) > 0 {
				// The same second as the line before (the parser's cache), maybe one byte off.
				b := []byte(prev[:19])
				if rng.IntN(2) == 0 {
					b[rng.IntN(19)] = odd[rng.IntN(len(odd))]
				}
				ts = string(b)
			} else {
				ts = dates[rng.IntN(len(dates))] + "T" + times[rng.IntN(len(times))]
			}
			if k := rng.IntN(12); k > 0 {
				ts += "."
				for range k - 1 {
					ts += string(rune('0' + rng.IntN(10)))
				}
			}
			ts += zones[rng.IntN(len(zones))]
			if rng.IntN(4) == 0 {
				b := []byte(ts)
				b[rng.IntN(len(b))] = odd[rng.IntN(len(odd))]
				ts = string(b)
			}
			line := []byte(ts + " x\n")
			got, at, err := p.Parse(line)
			want, werr := time.Parse(time.RFC3339Nano, ts)
			name := fmt.Sprintf("seed %d line %d %q (after %q)", seed, i, ts, prev)
			if err == nil {
				if werr != nil {
					t.Fatalf("%s: accepted, time.Parse refuses: %v", name, werr)
				}
				if !got.Equal(want) || at != len(ts)+1 {
					t.Fatalf("%s: read %s at %d, time.Parse %s", name, got, at, want)
				}
			} else if werr == nil && shape.MatchString(ts) {
				t.Fatalf("%s: refused (%v), time.Parse reads %s", name, err, want)
			}
			// A fresh parser agrees with the one that reused the second.
			fgot, fat, ferr := ParseTimestamp(line)
			if (ferr == nil) != (err == nil) || !fgot.Equal(got) || fat != at {
				t.Fatalf("%s: a fresh parser reads %s, %d, %v; the reused one %s, %d, %v", name, fgot, fat, ferr, got, at, err)
			}
			if len(ts) >= 19 {
				prev = ts
			}
		}
	}
}
