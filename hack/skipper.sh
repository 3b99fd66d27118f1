#!/usr/bin/env bash
# Builds Skipper (github.com/zalando/skipper), the data plane of the skipper
# provider's end-to-end scenario (e2e/skipper_test.go), from the Go module
# proxy and links it as bin/skipper.
#
# Skipper v0.27 needs Go 1.27 (its go.mod says `go 1.27.0`), newer than the
# project's Go: this script alone runs the go command with
# GOTOOLCHAIN=$go_toolchain, which the go command fetches from the module
# proxy like a module (about 76 MB, once per machine). The project's own
# go.mod and every other build keep the machine's Go.
#
# `go install github.com/zalando/skipper/cmd/skipper@version` does not work
# here: it asks the proxy for Skipper's version list (to read a deprecation
# notice), which the proxy refuses. The build module hack/tools/skipper pins
# the version instead (a `tool` directive keeps go mod tidy from dropping it);
# nothing of Skipper is committed.
#
# The binary is cached outside the clone, in $SLUICE_CACHE_DIR (default
# ${XDG_CACHE_HOME:-~/.cache}/sluice)/tools/skipper-<key>, keyed by a hash of
# the build module, the version, the flags and the toolchain; the build runs
# under a lock into a temporary directory moved into place only when
# complete.
#
#   hack/skipper.sh        build (once) and link bin/skipper
#   hack/skipper.sh tidy   after changing the version in hack/tools/skipper/go.mod:
#                          regenerate its go.sum with the right toolchain
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
mod_dir="$root/hack/tools/skipper"
bin_dir="$root/bin"

skipper_version=v0.27.65
skipper_commit=527238d1
go_toolchain=go1.27.3
ldflags="-s -w -X main.version=$skipper_version -X main.commit=$skipper_commit"

# The pinned version must be the one the build module requires.
if ! grep -Eq "^[[:space:]]*github.com/zalando/skipper $skipper_version( |\$)" "$mod_dir/go.mod"; then
  echo "hack/skipper.sh pins Skipper $skipper_version but $mod_dir/go.mod requires another version" >&2
  exit 1
fi

if [ "${1:-}" = tidy ]; then
  (cd "$mod_dir" && GOTOOLCHAIN=$go_toolchain go mod tidy)
  echo "Updated $mod_dir/go.mod and go.sum" >&2
  exit 0
fi

key=$( { cat "$mod_dir/go.mod" "$mod_dir/go.sum"; echo "$skipper_version $go_toolchain $ldflags"; } | sha256sum | cut -c1-16)
dest="$cache_root/tools/skipper-$key"

link() {
  mkdir -p "$bin_dir"
  ln -sfn "$dest/skipper" "$bin_dir/skipper"
}

if [ -x "$dest/skipper" ]; then
  link
  exit 0
fi

mkdir -p "$cache_root/tools"
exec 9>"$cache_root/tools/skipper.lock"
flock 9
if [ ! -x "$dest/skipper" ]; then
  tmp=$(mktemp -d "$cache_root/tools/.build-skipper-XXXXXX")
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  echo "Building Skipper $skipper_version with $go_toolchain into $dest (first run only, a few minutes; cached afterwards)" >&2
  start=$SECONDS
  src="$tmp/src"
  mkdir -p "$src"
  cp "$mod_dir/go.mod" "$mod_dir/go.sum" "$src/"
  (cd "$src" && GOTOOLCHAIN=$go_toolchain CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$tmp/skipper" github.com/zalando/skipper/cmd/skipper)
  rm -rf "$src"
  mv "$tmp" "$dest"
  trap - EXIT
  echo "Built Skipper in $((SECONDS - start))s" >&2
fi
link
"$bin_dir/skipper" -version >&2
