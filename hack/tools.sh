#!/usr/bin/env bash
# Builds, from the Go module proxy, the tools the end-to-end tests and the demo need, and caches each
# one by version outside the clone so that later runs start in seconds.
#
#   hack/tools.sh [TOOL...]   build what is missing (default: the control plane) and print the bin dir
#
# TOOLS_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-logexport/tools) holds one directory per
# tool and version; a directory is only moved into place once its build succeeded.
set -euo pipefail

KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBE_VERSION=${KUBE_VERSION:-v1.36.5}
GORELEASER_VERSION=${GORELEASER_VERSION:-v2.16.0}
KREW_VERSION=${KREW_VERSION:-v0.4.3}
STERN_VERSION=${STERN_VERSION:-v1.33.0}
# SeaweedFS publishes no module versions; this pseudo-version is the one the Go module proxy serves.
WEED_VERSION=${WEED_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}

TOOLS_DIR=${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-logexport/tools}
BIN_DIR="$TOOLS_DIR/bin"
mkdir -p "$TOOLS_DIR" "$BIN_DIR"

log() { printf 'tools: %s\n' "$*" >&2; }

# build NAME VERSION FUNC: runs FUNC with a fresh staging dir as $1 unless NAME-VERSION is cached,
# then links every file of the cached dir into BIN_DIR.
build() {
  local name=$1 version=$2 fn=$3 dest="$TOOLS_DIR/$1-$2"
  if [[ ! -d $dest ]]; then
    log "building $name $version (cold builds take minutes)"
    local stage
    stage=$(mktemp -d "$TOOLS_DIR/.stage-$name.XXXXXX")
    mkdir -p "$stage/bin"
    local start=$SECONDS
    if ! "$fn" "$stage" "$version"; then
      rm -rf "$stage"
      log "building $name $version failed"
      return 1
    fi
    rm -rf "$dest"
    mv "$stage/bin" "$dest"
    rm -rf "$stage"
    log "built $name $version in $((SECONDS - start))s"
  fi
  local f
  for f in "$dest"/*; do ln -sf "$f" "$BIN_DIR/$(basename "$f")"; done
}

build_kwok() {
  GOBIN="$1/bin" go install "sigs.k8s.io/kwok/cmd/kwok@$2" "sigs.k8s.io/kwok/cmd/kwokctl@$2"
}

# etcd's go.mod has replace directives, so `go install` refuses it: build it from a wrapper module.
build_etcd() {
  local dir="$1/src"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module tools.local/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $2
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$dir" && go mod download && go build -tags tools -o "$1/bin/etcd" go.etcd.io/etcd/server/v3)
}

# k8s.io/kubernetes refers to its staging modules through replace directives: a wrapper module maps
# each of them to its published v0.X.Y version.
build_kube() {
  local dir="$1/src" version=$2 minor
  minor=${version#v1.}
  minor=${minor%%.*}
  mkdir -p "$dir"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  {
    printf 'module tools.local/kube\n\ngo 1.25\n\nrequire k8s.io/kubernetes %s\n\n' "$version"
    grep -E '^[[:space:]]*k8s\.io/[^ ]+ => \./staging/' "$gomod" |
      awk -v v="v0.${version#v1.}" '{ printf "replace %s => %s %s\n", $1, $1, v }'
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  local pkg=k8s.io/component-base/version
  (cd "$dir" && go mod tidy && go build -tags tools -o "$1/bin/" \
    -ldflags "-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
}

build_goreleaser() { GOBIN="$1/bin" go install "github.com/goreleaser/goreleaser/v2@$2"; }
build_krew() {
  GOBIN="$1/bin" go install "sigs.k8s.io/krew/cmd/krew@$2" "sigs.k8s.io/krew/cmd/validate-krew-manifest@$2"
}
# Built as stern's own releases are (static, stripped), so that the benchmark compares like with like.
build_stern() { CGO_ENABLED=0 GOBIN="$1/bin" go install -ldflags "-s -w" "github.com/stern/stern@$2"; }

# SeaweedFS (`weed mini`: an S3 server in one process) for the end-to-end tests of the bucket export.
# Its go.mod replaces go-bip39, so `go install` refuses it: a wrapper module repeats that replace.
# Nothing smaller can be built: every optional store is already behind an opt-in build tag (sqlite,
# tikv, ydb, ...), and `mini` lives in weed/command with every other command. Measured on 2 cores,
# its modules downloaded and built anew (the few it shares with the control plane were in the build
# cache): 19 CPU-minutes (user+sys; about 10 minutes alone, 29 on a machine busy with other builds),
# a 164 MB stripped binary.
build_weed() {
  local dir="$1/src"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module tools.local/weed

go 1.26

require github.com/seaweedfs/seaweedfs $2

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
GO
  (cd "$dir" && go mod tidy && go build -tags tools -ldflags "-s -w" -o "$1/bin/weed" github.com/seaweedfs/seaweedfs/weed)
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(cluster)
for t in "${tools[@]}"; do
  case $t in
    cluster) build etcd "$ETCD_VERSION" build_etcd
             build kwok "$KWOK_VERSION" build_kwok
             build kube "$KUBE_VERSION" build_kube ;;
    etcd) build etcd "$ETCD_VERSION" build_etcd ;;
    kwok) build kwok "$KWOK_VERSION" build_kwok ;;
    kube) build kube "$KUBE_VERSION" build_kube ;;
    goreleaser) build goreleaser "$GORELEASER_VERSION" build_goreleaser ;;
    krew) build krew "$KREW_VERSION" build_krew ;;
    stern) build stern-static "$STERN_VERSION" build_stern ;;
    weed) build weed "$WEED_VERSION" build_weed ;;
    *) log "unknown tool $t"; exit 2 ;;
  esac
done
echo "$BIN_DIR"
