// Command krew-manifest renders .krew.yaml the way the krew-release-bot does for a tag, taking
// each archive's sha256 from goreleaser's checksums file instead of downloading it.
//
//	go run ./hack/krew-manifest -tag v0.1.0 -checksums dist/checksums.txt < .krew.yaml
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/template"
)

func main() {
	tag := flag.String("tag", "", "release tag, with its leading v")
	sums := flag.String("checksums", "dist/checksums.txt", "goreleaser's checksums file")
	flag.Parse()
	if err := run(*tag, *sums, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "krew-manifest: %v\n", err)
		os.Exit(1)
	}
}

func run(tag, sumsFile string, in io.Reader, out io.Writer) error {
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
			if !ok {
				return "", fmt.Errorf("no checksum for %s in %s", path.Base(uri), sumsFile)
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", uri, sum), nil
		},
	}
	t, err := template.New(".krew.yaml").Funcs(funcs).Parse(string(src))
	if err != nil {
		return err
	}
	return t.Execute(out, struct{ TagName string }{tag})
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
