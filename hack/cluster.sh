#!/usr/bin/env bash
# Starts and stops a local Kubernetes control plane (etcd + kube-apiserver + scheduler +
# controller-manager + kwok) with kwokctl's binary runtime, from binaries built by hack/tools.sh.
#
#   hack/cluster.sh up   [NAME]   start (or reuse) cluster NAME, print its kubeconfig path
#   hack/cluster.sh down [NAME]   delete it
#   hack/cluster.sh restart-apiserver [NAME]   kill kube-apiserver and start it again
#   hack/cluster.sh kubeconfig [NAME]
#
# State lives under CLUSTER_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-logexport/clusters),
# never in the home directory's ~/.kwok or ~/.kube.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmd=${1:-}
name=${2:-logexport}
CLUSTER_DIR=${CLUSTER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-logexport/clusters}
export KWOK_WORKDIR="$CLUSTER_DIR/kwok"
export KUBECACHEDIR="$CLUSTER_DIR/kube-cache"
kubeconfig="$CLUSTER_DIR/$name.kubeconfig"
mkdir -p "$CLUSTER_DIR"

bin=$("$here/tools.sh" cluster)
export PATH="$bin:$PATH"

running() {
  [[ -f $kubeconfig ]] && kubectl --kubeconfig "$kubeconfig" --request-timeout 5s get --raw /readyz >/dev/null 2>&1
}

case $cmd in
  up)
    if running; then
      echo "$kubeconfig"
      exit 0
    fi
    kwokctl delete cluster --name "$name" >/dev/null 2>&1 || true
    # Ports are picked by kwokctl; --wait returns once the API server answers.
    kwokctl create cluster --name "$name" --runtime binary --kubeconfig "$kubeconfig" \
      --etcd-binary "$bin/etcd" \
      --kube-apiserver-binary "$bin/kube-apiserver" \
      --kube-controller-manager-binary "$bin/kube-controller-manager" \
      --kube-scheduler-binary "$bin/kube-scheduler" \
      --kwok-controller-binary "$bin/kwok" \
      --enable-crds Logs,ClusterLogs \
      --wait 2m >&2
    # A node for the pods: kwok plays its kubelet. The taint keeps anything that does not ask for
    # it away from the fake node.
    kubectl --kubeconfig "$kubeconfig" apply -f - >&2 <<'YAML'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-0
spec:
  taints:
  - key: kwok.x-k8s.io/node
    value: fake
    effect: NoSchedule
YAML
    echo "$kubeconfig"
    ;;
  down)
    # Components that restart-apiserver started again are not always stopped by kwokctl: stop
    # whatever still runs from this cluster's directory.
    dir="$KWOK_WORKDIR/clusters/$name"
    pids=()
    for f in "$dir"/pids/*.pid; do
      [[ -f $f ]] && pids+=("$(<"$f")") # kwokctl writes them without a newline
    done
    kwokctl delete cluster --name "$name" >&2 || true
    ours() { grep -qF "clusters/$name/" "/proc/$1/cmdline" 2>/dev/null; }
    for pid in "${pids[@]}"; do
      ours "$pid" && { kill "$pid" 2>/dev/null || true; }
    done
    # With etcd gone, kube-apiserver's graceful shutdown can wait a long time.
    for pid in "${pids[@]}"; do
      for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
      ours "$pid" && { kill -9 "$pid" 2>/dev/null || true; }
    done
    rm -f "$kubeconfig"
    ;;
  restart-apiserver)
    # Kills kube-apiserver and starts it again with the same command line, as an upgrade or a
    # crash would. A real node's kubelet restarts the controller-manager and scheduler when they
    # exit on losing their leader lease; here this script does.
    dir="$KWOK_WORKDIR/clusters/$name"
    declare -A cmdlines
    for pidfile in "$dir"/pids/*.pid; do
      c=$(basename "$pidfile" .pid)
      cmdlines[$c]=$(tr '\0' '\n' <"/proc/$(cat "$pidfile")/cmdline")
    done
    start() { # start COMPONENT: run its saved command line again, detached
      local c=$1
      mapfile -t args <<<"${cmdlines[$c]}"
      # exec keeps $! the component's own pid, which kwokctl later stops by its pid file.
      (cd "$dir" && exec "${args[@]}" >>"$dir/logs/$c.log" 2>&1 </dev/null) &
      echo $! >"$dir/pids/$c.pid"
    }
    pid=$(cat "$dir/pids/kube-apiserver.pid")
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    start kube-apiserver
    for _ in $(seq 120); do running && break; sleep 0.5; done
    running
    # kwok v0.8.0 does not always pick up its watches again after the API server went away (new
    # Logs objects are then not served): restart it, as a node would reconnect its kubelet.
    kwok=$(cat "$dir/pids/kwok-controller.pid")
    kill "$kwok"
    while kill -0 "$kwok" 2>/dev/null; do sleep 0.1; done
    # The node lease names the old kwok as holder; the new one would wait for it to expire.
    kubectl --kubeconfig "$kubeconfig" delete lease -n kube-node-lease --all >&2
    start kwok-controller
    sleep 3
    for c in "${!cmdlines[@]}"; do
      kill -0 "$(cat "$dir/pids/$c.pid")" 2>/dev/null || start "$c"
    done
    ;;
  kubeconfig)
    echo "$kubeconfig"
    ;;
  *)
    echo "usage: $0 up|down|restart-apiserver|kubeconfig [NAME]" >&2
    exit 2
    ;;
esac
