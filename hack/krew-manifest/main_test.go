package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestRun(t *testing.T) {
	const tmpl = `spec:
  version: {{ .TagName }}
  platforms:
{{- range $os := list "linux" "darwin" }}
  - selector: {matchLabels: {os: {{ $os }}}}
    {{ addURIAndSha (printf "https://example.com/%s/x_%s_%s.tar.gz" $.TagName (trimPrefix "v" $.TagName) $os) $.TagName }}
{{- end }}
`
	both := "aaa  x_1.0.0_linux.tar.gz\nbbb  x_1.0.0_darwin.tar.gz\n"
	linux := "aaa  x_1.0.0_linux.tar.gz\n"
	tests := []struct {
		name      string
		sums      string
		builtOnly bool
		wantSums  []string // the platforms' sha256, in order
		wantErr   string
	}{
		{name: "all built", sums: both, wantSums: []string{"aaa", "bbb"}},
		{name: "all built, built-only", sums: both, builtOnly: true, wantSums: []string{"aaa", "bbb"}},
		{name: "one missing", sums: linux, wantErr: "no checksum for x_1.0.0_darwin.tar.gz"},
		{name: "one missing, built-only", sums: linux, builtOnly: true, wantSums: []string{"aaa"}},
		{name: "none built, built-only", sums: "", builtOnly: true, wantErr: "no platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sums := filepath.Join(t.TempDir(), "checksums.txt")
			if err := os.WriteFile(sums, []byte(tt.sums), 0o644); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			err := run("v1.0.0", sums, tt.builtOnly, strings.NewReader(tmpl), &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				Spec struct {
					Version   string
					Platforms []struct {
						URI    string
						Sha256 string
					}
				}
			}
			if err := yaml.Unmarshal([]byte(out.String()), &m); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			var got []string
			for _, p := range m.Spec.Platforms {
				if !strings.HasPrefix(p.URI, "https://example.com/v1.0.0/x_1.0.0_") {
					t.Errorf("uri %q", p.URI)
				}
				got = append(got, p.Sha256)
			}
			if m.Spec.Version != "v1.0.0" || strings.Join(got, ",") != strings.Join(tt.wantSums, ",") {
				t.Fatalf("version %q, sha256s %v, want %v\n%s", m.Spec.Version, got, tt.wantSums, out.String())
			}
		})
	}
}
