// Command krew-manifest renders .krew.yaml the way the krew-release-bot does for a tag, taking
// each archive's sha256 from goreleaser's checksums file instead of downloading it.
//
//	go run ./hack/krew-manifest -tag v0.1.0 -checksums dist/checksums.txt < .krew.yaml
//
// With -built-only, platforms whose archive the checksums file does not name are left out: a
// snapshot built for one platform renders a manifest krew can install that archive from.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

func main() {
	tag := flag.String("tag", "", "release tag, with its leading v")
	sums := flag.String("checksums", "dist/checksums.txt", "goreleaser's checksums file")
	builtOnly := flag.Bool("built-only", false, "leave out platforms whose archive has no checksum")
	flag.Parse()
	if err := run(*tag, *sums, *builtOnly, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "krew-manifest: %v\n", err)
		os.Exit(1)
	}
}

func run(tag, sumsFile string, builtOnly bool, in io.Reader, out io.Writer) error {
	sums, err := readSums(sumsFile)
	if err != nil {
		return err
	}
	src, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	funcs := template.FuncMap{
		"list":       func(v ...string) []string { return v },
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		// As the release bot: the archive's URI and its sha256.
		"addURIAndSha": func(uri, _ string) (string, error) {
			sum, ok := sums[path.Base(uri)]
			if !ok && !builtOnly {
				return "", fmt.Errorf("no checksum for %s in %s", path.Base(uri), sumsFile)
			}
			if !ok {
				// An empty sha256 marks the platform for leaving out below.
				sum = `""`
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", uri, sum), nil
		},
	}
	t, err := template.New(".krew.yaml").Funcs(funcs).Parse(string(src))
	if err != nil {
		return err
	}
	var rendered bytes.Buffer
	if err := t.Execute(&rendered, struct{ TagName string }{tag}); err != nil {
		return err
	}
	if !builtOnly {
		_, err := out.Write(rendered.Bytes())
		return err
	}
	return writeBuiltOnly(rendered.Bytes(), out)
}

// writeBuiltOnly writes the manifest with only the platforms that have a sha256.
func writeBuiltOnly(manifest []byte, out io.Writer) error {
	var m map[string]any
	if err := yaml.Unmarshal(manifest, &m); err != nil {
		return fmt.Errorf("rendered manifest: %w", err)
	}
	spec, _ := m["spec"].(map[string]any)
	platforms, _ := spec["platforms"].([]any)
	var kept []any
	for _, p := range platforms {
		if pm, _ := p.(map[string]any); pm != nil && pm["sha256"] != "" {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return errors.New("no platform's archive has a checksum")
	}
	spec["platforms"] = kept
	data, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	_, err = out.Write(data)
	return err
}

func readSums(name string) (map[string]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) == 2 {
			sums[fields[1]] = fields[0]
		}
	}
	return sums, s.Err()
}
