package compact

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestBreakTokenAdversarial: Token/Reader.Token/SkipToken on strings built around the known
// schemes: scheme only, odd/even hex tails, uppercase hex, near-miss schemes, binary bytes.
func TestBreakTokenAdversarial(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	hexl, hexu := "0123456789abcdef", "0123456789ABCDEF"
	parts := []string{"containerd://", "cri-o://", "docker://", "containerd:/", "Containerd://", "docker:///", "a", "", "-", "\x00", "\xff", "containerd://containerd://"}
	tail := func() string {
		n := rng.IntN(80)
		var b strings.Builder
		for range n {
			switch rng.IntN(10) {
			case 0:
				b.WriteByte(hexu[rng.IntN(16)])
			case 1:
				b.WriteByte(byte(rng.IntN(256)))
			default:
				b.WriteByte(hexl[rng.IntN(16)])
			}
		}
		return b.String()
	}
	check := func(s string) {
		b := String(Token(nil, s), "after")
		r := NewReader(string(b))
		if got := r.Token(); got != s {
			t.Fatalf("Token(%q) read back %q", s, got)
		}
		if got := r.String(); got != "after" {
			t.Fatalf("Token(%q): next read %q", s, got)
		}
		r = NewReader(string(b))
		r.SkipToken()
		if got := r.String(); got != "after" {
			t.Fatalf("SkipToken(%q): next read %q", s, got)
		}
	}
	for _, p := range parts {
		for n := 0; n <= 70; n++ {
			check(p + strings.Repeat("a", n))
			check(p + strings.Repeat("A", n))
			check(p + strings.Repeat("0", n) + "G")
		}
	}
	for range 200000 {
		s := parts[rng.IntN(len(parts))] + tail()
		if rng.IntN(3) == 0 {
			s = parts[rng.IntN(len(parts))] + s
		}
		check(s)
	}
}
