#!/usr/bin/env bash
# The main job on a fresh machine: a local cluster with workloads that keep logging, then
# `kubectl logexport -A -p 'redis.*'` twice to show the incremental run.
#
#   hack/demo.sh          start (or reuse) the demo cluster and run the exports
#   hack/demo.sh down     stop the loggers and delete the cluster
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=demo
state=${DEMO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-logexport/demo}
out=${DEMO_OUT:-$root/demo-logs}

if [[ ${1:-} == down ]]; then
  [[ -f $state/loggers.pid ]] && kill "$(cat "$state/loggers.pid")" 2>/dev/null || true
  "$root/hack/cluster.sh" down "$name"
  rm -rf "$state"
  exit 0
fi

kubeconfig=$("$root/hack/cluster.sh" up "$name")
export KUBECONFIG=$kubeconfig
mkdir -p "$state/bin" "$state/logs"
(cd "$root" && go build -o "$state/bin/kubectl-logexport" ./cmd/kubectl-logexport)
export PATH="$state/bin:$PATH"

pods=(cache/redis-0 cache/redis-1 web/lighthouse-a web/lighthouse-b web/redis-0)
for p in "${pods[@]}"; do
  ns=${p%/*} pod=${p#*/}
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  file="$state/logs/$ns-$pod.log"
  touch "$file"
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $pod, namespace: $ns, labels: {app: ${pod%-*}}}
spec:
  nodeName: kwok-node-0
  tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
  containers: [{name: ${pod%-*}, image: fake}]
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Logs
metadata: {name: $pod, namespace: $ns}
spec:
  logs: [{containers: [${pod%-*}], logsFile: $file}]
YAML
done
for p in "${pods[@]}"; do
  ns=${p%/*} pod=${p#*/}
  kubectl wait -n "$ns" --for=condition=Ready "pod/$pod" --timeout=60s >/dev/null
  # kwok leaves containerID empty; a kubelet never does.
  if [[ -z $(kubectl get pod -n "$ns" "$pod" -o jsonpath='{.status.containerStatuses[0].containerID}') ]]; then
    kubectl patch pod -n "$ns" "$pod" --subresource=status --type=json \
      -p "[{\"op\":\"add\",\"path\":\"/status/containerStatuses/0/containerID\",\"value\":\"containerd://$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')\"}]" >/dev/null
  fi
done

# The workloads: every half second each pod logs a line, sometimes the same line twice.
if ! { [[ -f $state/loggers.pid ]] && kill -0 "$(cat "$state/loggers.pid")" 2>/dev/null; }; then
  (
    trap 'exit 0' TERM
    i=0
    while :; do
      ts=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
      for p in "${pods[@]}"; do
        f="$state/logs/${p%/*}-${p#*/}.log"
        printf '%s stdout F %s request %d handled\n' "$ts" "${p#*/}" "$i" >>"$f"
        ((i % 3)) || printf '%s stdout F %s heartbeat\n%s stdout F %s heartbeat\n' "$ts" "${p#*/}" "$ts" "${p#*/}" >>"$f"
      done
      i=$((i + 1))
      sleep 0.5
    done
  ) </dev/null >/dev/null 2>&1 &
  echo $! >"$state/loggers.pid"
fi
sleep 3

echo "+ kubectl logexport -A -p 'redis.*' -d $out"
kubectl logexport -A -p 'redis.*' -d "$out"
sleep 3
echo
echo "+ kubectl logexport -A -p 'redis.*' -d $out    # again: only what is new"
kubectl logexport -A -p 'redis.*' -d "$out"
echo
echo "Exported files:"
find "$out" -name '*.log' | sort
echo
echo "The pods keep logging: run 'make demo' again for the next increment; 'make demo-down' stops it."
