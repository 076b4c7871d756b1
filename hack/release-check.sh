#!/usr/bin/env bash
# Release and krew checks, runnable on a fresh machine (CI runs it through `make test`):
#   1. goreleaser (pinned, built from the module proxy) validates .goreleaser.yaml and builds the
#      snapshot archive of this machine's platform; with RELEASE_ALL=1 (implied by UPDATE_MANIFEST=1)
#      every platform's, as a release does (cold, that is six builds of the whole dependency tree);
#   2. the krew manifest rendered from .krew.yaml with the snapshot's real checksums (only the built
#      platforms), and the committed plugins/logexport.yaml, pass krew's own validate-krew-manifest;
#      each built archive installs with krew for its platform;
#   3. krew installs this platform's archive into a temporary KREW_ROOT; kubectl finds the plugin,
#      `kubectl logexport version` prints the snapshot version, one export against a local
#      cluster works and `kubectl logexport -n <TAB>` completes namespaces from it;
#   4. krew uninstalls it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=$(hack/tools.sh goreleaser krew)
export PATH="$bin:$PATH"
work=$(mktemp -d)
cluster=release
cleanup() {
  hack/cluster.sh down "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

step "goreleaser check and snapshot build"
goreleaser check
[[ ${UPDATE_MANIFEST:-} == 1 ]] && RELEASE_ALL=1
host_os=$(go env GOOS) host_arch=$(go env GOARCH)
config=.goreleaser.yaml
platforms=()
if [[ ${RELEASE_ALL:-} == 1 ]]; then
  for os in linux darwin windows; do for arch in amd64 arm64; do platforms+=("$os/$arch"); done; done
else
  # `release` has no --single-target: the same configuration with this platform's targets only.
  config="$work/goreleaser.yaml"
  sed -e "s|^    goos: \[linux, darwin, windows\]$|    goos: [$host_os]|" \
    -e "s|^    goarch: \[amd64, arm64\]$|    goarch: [$host_arch]|" .goreleaser.yaml >"$config"
  [[ $(grep -c -e "^    goos: \[$host_os\]$" -e "^    goarch: \[$host_arch\]$" "$config") == 2 ]] ||
    fail "could not narrow .goreleaser.yaml's goos/goarch to $host_os/$host_arch"
  platforms=("$host_os/$host_arch")
fi
goreleaser release --config "$config" --snapshot --clean --parallelism 2 --skip=docker >"$work/goreleaser.log" 2>&1 || { cat "$work/goreleaser.log"; fail "goreleaser release --snapshot"; }
version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' dist/metadata.json)
[[ -n $version ]] || fail "no version in dist/metadata.json"
archive_of() { local ext=tar.gz; [[ $1 == windows ]] && ext=zip; echo "dist/kubectl-logexport_${version}_$1_$2.$ext"; }
for p in "${platforms[@]}"; do
  a=$(archive_of "${p%/*}" "${p#*/}")
  [[ -f $a ]] || fail "missing archive $a"
  grep -q " ${a#dist/}$" dist/checksums.txt || fail "no checksum for $a"
done
[[ $(wc -l <dist/checksums.txt) == "${#platforms[@]}" ]] || fail "checksums.txt names other archives than ${platforms[*]}"
archive=$(archive_of "$host_os" "$host_arch")
# Outputs are captured before grep -q looks at them: with pipefail, a writer that outlives grep's
# early exit dies of SIGPIPE and fails the check at random.
listing=$(tar -tzf "$archive" | sort | tr '\n' ' ')
grep -q "LICENSE README.md kubectl-logexport kubectl_complete-logexport" <<<"$listing" ||
  fail "archive contents: $(tar -tzf "$archive" | tr '\n' ' ')"

step "krew manifests"
manifest="$work/logexport.yaml"
built_only=-built-only
[[ ${RELEASE_ALL:-} == 1 ]] && built_only=
go run ./hack/krew-manifest -tag "v$version" -checksums dist/checksums.txt $built_only <.krew.yaml >"$manifest"
# The validator's own install step downloads each platform's URI, which this machine cannot reach:
# validate the structure with it, then install every archive offline as that step would.
validate-krew-manifest -manifest "$manifest" -skip-install
validate-krew-manifest -manifest plugins/logexport.yaml -skip-install
for p in "${platforms[@]}"; do
  os=${p%/*} arch=${p#*/}
  root="$work/krew-$os-$arch"
  KREW_ROOT=$root KREW_OS=$os KREW_ARCH=$arch krew install --manifest="$manifest" \
    --archive="$(archive_of "$os" "$arch")" >/dev/null 2>&1 ||
    fail "krew install for $os/$arch"
  ls "$root"/store/logexport/*/LICENSE >/dev/null || fail "LICENSE not installed for $os/$arch"
done
if [[ ${UPDATE_MANIFEST:-} == 1 ]]; then
  { printf '# Rendered from .krew.yaml with the checksums of the archives it names; the krew-release-bot\n'
    printf '# renders it for each release tag. Locally: UPDATE_MANIFEST=1 hack/release-check.sh\n'
    cat "$manifest"; } >plugins/logexport.yaml
fi

step "krew install from the snapshot archive"
export KREW_ROOT="$work/krew"
export PATH="$KREW_ROOT/bin:$PATH"
krew install --manifest="$manifest" --archive="$archive"
plugins=$(kubectl plugin list 2>/dev/null) || true
grep -q "$KREW_ROOT/bin/kubectl-logexport" <<<"$plugins" || fail "kubectl plugin list does not show the krew-installed plugin"
# Not through head: it may exit before the second line is written (SIGPIPE, and pipefail).
got=$(kubectl logexport version)
got=${got%%$'\n'*}
[[ $got == "kubectl-logexport v$version" ]] || fail "version: got '$got', want 'kubectl-logexport v$version'"
# krew links only the plugin's bin; the completion helper goes beside it (README, Install).
ln -s "$KREW_ROOT/store/logexport/v$version/kubectl_complete-logexport" "$KREW_ROOT/bin/"

step "one export through the krew-installed plugin"
export KUBECONFIG
KUBECONFIG=$(hack/cluster.sh up "$cluster")
ns=krew-check
log="$work/app.log"
printf '2024-01-01T00:00:00.000000000Z stdout F hello from krew\n2024-01-01T00:00:01.000000000Z stdout F bye\n' >"$log"
kubectl create namespace "$ns" >/dev/null
kubectl create serviceaccount default -n "$ns" >/dev/null 2>&1 || true
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: $ns}
spec:
  nodeName: kwok-node-0
  tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
  containers: [{name: app, image: fake}]
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata: {name: web, namespace: $ns}
spec:
  logs: [{containers: [app], logsFile: $log}]
YAML
kubectl wait -n "$ns" --for=condition=Ready pod/web --timeout=60s >/dev/null
for _ in $(seq 60); do kubectl logs -n "$ns" web -c app >/dev/null 2>&1 && break; sleep 0.5; done
kubectl logexport -n "$ns" -d "$work/out"
printf 'hello from krew\nbye\n' | cmp - "$work/out/$ns/web/app.log" || fail "exported content differs"

step "completion of namespaces through kubectl"
completed=$(kubectl __complete logexport -n '' 2>&1) || true
grep -qx "$ns" <<<"$completed" || fail "kubectl __complete logexport -n '' does not list $ns:
$completed"
context=$(kubectl config current-context)
completed=$(kubectl __complete logexport --context '' 2>/dev/null) || true
grep -qx "$context" <<<"$completed" || fail "kubectl __complete logexport --context '' does not list $context:
$completed"

step "krew uninstall"
# uninstall wants a cloned plugin index; GitHub's cannot be reached here, an empty local one does.
git init -q "$KREW_ROOT/index/default"
krew uninstall logexport
[[ ! -e $KREW_ROOT/bin/kubectl-logexport ]] || fail "still installed"
plugins=$(kubectl plugin list 2>/dev/null) || true
grep -q "$KREW_ROOT/bin/kubectl-logexport" <<<"$plugins" && fail "kubectl still lists the plugin"

printf '\nPASS: release and krew checks (snapshot %s)\n' "$version" >&2
