// Package version holds the build's version, stamped by the linker:
//
//	go build -ldflags "-X github.com/logexport/kubectl-logexport/pkg/version.Version=v1.2.3 ..."
package version

import "runtime/debug"

var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Get returns the version, falling back to the module version of a `go install`.
func Get() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
