package cmd

import (
	"strings"
	"testing"
)

func TestValidateMetricsAddress(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		follow bool
		err    string // "" for none
	}{
		{addr: "", follow: false},
		{addr: "", follow: true},
		{addr: ":8080", follow: true},
		{addr: "127.0.0.1:0", follow: true},
		{addr: "[::1]:9090", follow: true},
		{addr: ":8080", follow: false, err: "--metrics-bind-address needs --follow"},
		{addr: "8080", follow: true, err: `invalid --metrics-bind-address "8080"`},
		{addr: "localhost:", follow: true, err: `invalid --metrics-bind-address "localhost:"`},
	} {
		err := validateMetricsAddress(tc.addr, tc.follow)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q (follow %v): %v", tc.addr, tc.follow, err)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("%q (follow %v): %v, want %q", tc.addr, tc.follow, err, tc.err)
		}
	}
}
