#!/usr/bin/env bash
# Builds a real Graphite-compatible server for the graphite metrics provider's
# tests from the Go module proxy, and links it in bin/:
#   - bin/go-carbon: go-carbon (github.com/go-graphite/go-carbon), the carbon
#     receiver (plaintext protocol over TCP) that writes whisper files and
#     serves them to carbonapi (its carbonserver);
#   - bin/carbonapi: carbonapi (github.com/go-graphite/carbonapi), graphite-web's
#     render API (/render?target=...&format=json, its functions) in Go.
#
# `go install module@version` fails for both: the proxy refuses the modules'
# version lists, which go install reads for its deprecation check. So, as
# hack/gitea.sh does, the script downloads each module's source (checked
# against the checksum database), copies it to a writable directory and
# builds its main package there with the module's own go.mod and go.sum
# (-mod=mod: the zips hold vendor/modules.txt but no vendored
# source). Cached in $SLUICE_CACHE_DIR (default
# ${XDG_CACHE_HOME:-~/.cache}/sluice)/tools/graphite-<key>, keyed by the
# versions, the recipe and `go version`. Cold cost: docs/development.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
bin_dir="$root/bin"

go_carbon=github.com/go-graphite/go-carbon@v0.18.0
carbonapi=github.com/go-graphite/carbonapi@v0.17.0

# build_one OUT MODULE@VERSION PACKAGE NAME: MODULE's PACKAGE as OUT/NAME.
build_one() {
  local out=$1 mod=$2 pkg=$3 name=$4 dir src
  dir=$(cd "$out" && go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ]; then
    echo "hack/graphite.sh: go mod download of $mod gave no source directory" >&2
    return 1
  fi
  src="$out/src-$name"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/$name" "$pkg")
  rm -rf "$src"
}

build() {
  build_one "$1" "$go_carbon" . go-carbon
  build_one "$1" "$carbonapi" ./cmd/carbonapi carbonapi
}

key=$( { declare -f build build_one; echo "$go_carbon $carbonapi"; go version; } | sha256sum | cut -c1-16)
dest="$cache_root/tools/graphite-$key"

link() {
  mkdir -p "$bin_dir"
  ln -sfn "$dest/go-carbon" "$bin_dir/go-carbon"
  ln -sfn "$dest/carbonapi" "$bin_dir/carbonapi"
}

if [ -x "$dest/go-carbon" ] && [ -x "$dest/carbonapi" ]; then
  link
  exit 0
fi

mkdir -p "$cache_root/tools"
exec 9>"$cache_root/tools/graphite.lock"
flock 9
if [ ! -x "$dest/go-carbon" ] || [ ! -x "$dest/carbonapi" ]; then
  tmp=$(mktemp -d "$cache_root/tools/.build-graphite-XXXXXX")
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  # go mod download needs a module to run in.
  (cd "$tmp" && go mod init graphite-build >/dev/null 2>&1)
  echo "Building go-carbon and carbonapi into $dest (first run only, minutes; cached afterwards)" >&2
  start=$SECONDS
  build "$tmp"
  rm -f "$tmp/go.mod"
  mv "$tmp" "$dest"
  trap - EXIT
  echo "Built go-carbon and carbonapi in $((SECONDS - start))s" >&2
fi
link
