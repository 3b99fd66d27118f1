#!/usr/bin/env bash
# Builds the project's pinned tools from the Go module proxy and links them into bin/.
#
#   hack/tools.sh gen       controller-gen                       (hack/tools/gen)
#   hack/tools.sh cluster   etcd, kube-apiserver, kube-controller-manager,
#                           kube-scheduler, kwok                 (hack/tools/cluster)
#   hack/tools.sh helm      helm                                 (hack/tools/helm)
#   hack/tools.sh lint      golangci-lint, golangci-lint-kube-api-linter
#                                                                (hack/tools/lint)
#   hack/tools.sh flagger   flagger v1.44.0 and its CRDs (flagger-crd.yaml),
#                           for make bench-flagger               (hack/tools/flagger)
#
# Binaries are cached outside the clone, in $SLUICE_CACHE_DIR (default
# ${XDG_CACHE_HOME:-~/.cache}/sluice), in a directory keyed by a hash of the
# tools module's go.mod/go.sum, the Go version and the build flags. A second run,
# or a fresh clone on the same machine, finds them there and builds nothing.
# The build happens under a lock into a temporary directory that is moved into
# place only when complete, so an interrupted build leaves nothing half-made.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
set_name=${1:?usage: hack/tools.sh gen|cluster|helm|lint|flagger}
cache_root=${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
bin_dir="$root/bin"
k8s_version=v1.37.2

case "$set_name" in
gen)
  mod_dir="$root/hack/tools/gen"
  tools=(controller-gen)
  ldflags="-s -w"
  ;;
cluster)
  mod_dir="$root/hack/tools/cluster"
  tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
  # kwok needs Stage documents; they ship in its module (Apache-2.0) and are
  # copied next to the binary: nodes initialize and heartbeat, pods become
  # ready, complete and delete. (Sluice's own stages are in pkg/testenv/stages.)
  stages=(node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)
  # Version stamps: without them the servers report v0.0.0-master.
  stamp=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
  done
  ldflags="-s -w$stamp"
  ;;
helm)
  mod_dir="$root/hack/tools/helm"
  tools=(helm)
  # Without the stamp helm reports its version as "main"/v4.0.0-unreleased.
  ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=v4.3.1"
  ;;
lint)
  mod_dir="$root/hack/tools/lint"
  tools=(golangci-lint golangci-lint-kube-api-linter)
  # Each binary also gets its module's version stamped (stamp_of), or it
  # reports "(devel)".
  ldflags="-s -w"
  ;;
flagger)
  mod_dir="$root/hack/tools/flagger"
  tools=(flagger)
  # The CRDs come from the same module version as the binary (a file of the
  # module zip), so the benchmark never runs Flagger against other CRDs.
  files=(artifacts/flagger/crd.yaml)
  files_mod=github.com/fluxcd/flagger
  ldflags="-s -w"
  ;;
*)
  echo "hack/tools.sh: unknown tool set '$set_name' (want gen, cluster, helm, lint or flagger)" >&2
  exit 2
  ;;
esac

# The package each tool is built from, relative to the tools module.
pkg_of() {
  case "$1" in
  controller-gen) echo sigs.k8s.io/controller-tools/cmd/controller-gen ;;
  flagger) echo github.com/fluxcd/flagger/cmd/flagger ;;
  etcd) echo go.etcd.io/etcd/server/v3 ;;
  kwok) echo sigs.k8s.io/kwok/cmd/kwok ;;
  helm) echo helm.sh/helm/v4/cmd/helm ;;
  golangci-lint) echo github.com/golangci/golangci-lint/v2/cmd/golangci-lint ;;
  golangci-lint-kube-api-linter) echo sigs.k8s.io/kube-api-linter/cmd/golangci-lint-kube-api-linter ;;
  *) echo "k8s.io/kubernetes/cmd/$1" ;;
  esac
}

# Extra link flags of one tool, read from the pinned go.mod (so covered by the key).
stamp_of() {
  local mod
  case "$1" in
  golangci-lint) mod=github.com/golangci/golangci-lint/v2 ;;
  golangci-lint-kube-api-linter) mod=sigs.k8s.io/kube-api-linter ;;
  *) return 0 ;;
  esac
  echo " -X main.version=$(cd "$mod_dir" && go list -m -f '{{.Version}}' "$mod") -X main.date=unknown"
}

stages=(${stages[@]+"${stages[@]}"})
files=(${files[@]+"${files[@]}"})
key=$( { cat "$mod_dir/go.mod" "$mod_dir/go.sum"; go version; echo "$ldflags"; echo "${tools[*]}"; echo "${stages[*]}"; echo "${files[*]}"; } | sha256sum | cut -c1-16)
dest="$cache_root/tools/$set_name-$key"

link() {
  mkdir -p "$bin_dir"
  for t in "${tools[@]}"; do ln -sfn "$dest/$t" "$bin_dir/$t"; done
  if [ ${#stages[@]} -gt 0 ]; then ln -sfn "$dest/kwok-stages" "$bin_dir/kwok-stages"; fi
  for f in "${files[@]}"; do ln -sfn "$dest/$set_name-$(basename "$f")" "$bin_dir/$set_name-$(basename "$f")"; done
}

if [ -x "$dest/${tools[-1]}" ]; then
  link
  exit 0
fi

mkdir -p "$cache_root/tools"
exec 9>"$cache_root/tools/$set_name.lock"
flock 9
if [ ! -x "$dest/${tools[-1]}" ]; then
  tmp=$(mktemp -d "$cache_root/tools/.build-$set_name-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "Building ${tools[*]} into $dest (first run only; cached afterwards)" >&2
  start=$SECONDS
  for t in "${tools[@]}"; do
    (cd "$mod_dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags$(stamp_of "$t")" -o "$tmp/$t" "$(pkg_of "$t")")
  done
  if [ ${#stages[@]} -gt 0 ]; then
    kwok_dir=$(cd "$mod_dir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
    mkdir -p "$tmp/kwok-stages"
    for st in "${stages[@]}"; do cp "$kwok_dir/kustomize/stage/$st" "$tmp/kwok-stages/$(basename "$st")"; done
    chmod -R u+w "$tmp/kwok-stages"
  fi
  if [ ${#files[@]} -gt 0 ]; then
    files_dir=$(cd "$mod_dir" && go list -m -f '{{.Dir}}' "$files_mod")
    for f in "${files[@]}"; do
      cp "$files_dir/$f" "$tmp/$set_name-$(basename "$f")"
      chmod u+w "$tmp/$set_name-$(basename "$f")"
    done
  fi
  mv "$tmp" "$dest"
  trap - EXIT
  echo "Built ${tools[*]} in $((SECONDS - start))s" >&2
fi
link
