#!/usr/bin/env bash
# Builds a real InfluxDB for the influxdb metrics provider's tests from the Go
# module proxy and links it as bin/influxd: InfluxDB OSS v1.8.3
# (github.com/influxdata/influxdb), the last pure Go server that serves the
# Flux query API (/api/v2/query, with [http] flux-enabled) Sluice's provider
# and InfluxDB's v2 client speak. InfluxDB 2 and 3 need Rust (libflux,
# DataFusion) and cannot be built here.
#
# `go install module@version` fails (the proxy refuses the module's version
# list, which go install reads for its deprecation check), so, as
# hack/gitea.sh does, the script downloads the module's source (checked
# against the checksum database), copies it to a writable directory and
# builds cmd/influxd there with its own go.mod and go.sum. Cached in
# $SLUICE_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/sluice)/tools/influxdb-<key>,
# keyed by the version, the recipe and `go version`. Cold cost:
# docs/development.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
bin_dir="$root/bin"

influxdb=github.com/influxdata/influxdb@v1.8.3

build() {
  local out=$1 dir
  dir=$(cd "$out" && go mod download -json "$influxdb" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ]; then
    echo "hack/influxdb.sh: go mod download of $influxdb gave no source directory" >&2
    return 1
  fi
  cp -r "$dir" "$out/src"
  chmod -R u+w "$out/src"
  (cd "$out/src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/influxd" ./cmd/influxd)
  rm -rf "$out/src"
}

key=$( { declare -f build; echo "$influxdb"; go version; } | sha256sum | cut -c1-16)
dest="$cache_root/tools/influxdb-$key"

link() {
  mkdir -p "$bin_dir"
  ln -sfn "$dest/influxd" "$bin_dir/influxd"
}

if [ -x "$dest/influxd" ]; then
  link
  exit 0
fi

mkdir -p "$cache_root/tools"
exec 9>"$cache_root/tools/influxdb.lock"
flock 9
if [ ! -x "$dest/influxd" ]; then
  tmp=$(mktemp -d "$cache_root/tools/.build-influxdb-XXXXXX")
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  (cd "$tmp" && go mod init influxdb-build >/dev/null 2>&1)
  echo "Building InfluxDB ${influxdb#*@} into $dest (first run only, minutes; cached afterwards)" >&2
  start=$SECONDS
  build "$tmp"
  rm -f "$tmp/go.mod"
  mv "$tmp" "$dest"
  trap - EXIT
  echo "Built InfluxDB in $((SECONDS - start))s" >&2
fi
link
