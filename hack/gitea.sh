#!/usr/bin/env bash
# Builds Gitea (code.gitea.io/gitea), a real Git host for the tests of commit
# statuses and for GitSync end-to-end scenarios, from the Go module proxy and
# links it as bin/gitea, with its templates and options as bin/gitea-static.
#
# `go install code.gitea.io/gitea@v…` fails: Gitea's go.mod has replace
# directives, which go install refuses. So the script downloads the module's
# source, copies it to a writable directory and builds the main package there
# with Gitea's own go.mod and go.sum. SQLite is Gitea's default pure Go driver
# (modernc.org/sqlite), so no cgo. The module zip has no built frontend (no
# JavaScript or CSS): the API and Git over HTTP do not need it, but Gitea
# reads its templates and options (locales, licences, .gitignore templates)
# from STATIC_ROOT_PATH at start-up; they are copied from the source next to
# the binary (bin/gitea-static), which pkg/testenv's app.ini points at.
#
# The binary is cached outside the clone, in $SLUICE_CACHE_DIR (default
# ${XDG_CACHE_HOME:-~/.cache}/sluice)/tools/gitea-<key>, keyed by a hash of
# the version, the build recipe and the Go version; the build runs under a
# lock into a temporary directory moved into place only when complete.
# Cold cost: see docs/development.md ("Gitea").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
bin_dir="$root/bin"

gitea_version=v1.27.3
ldflags="-s -w -X main.Version=${gitea_version#v}"

# build DIR: the gitea binary and its static files (templates, options,
# public) in DIR.
build() {
  local out=$1 src=$1/src dir
  dir=$(cd "$out" && go mod download -json "code.gitea.io/gitea@$gitea_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ]; then
    echo "hack/gitea.sh: go mod download of code.gitea.io/gitea@$gitea_version gave no source directory" >&2
    return 1
  fi
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  (cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$out/gitea" .)
  mkdir -p "$out/static"
  cp -r "$src/templates" "$src/options" "$src/public" "$out/static/"
  rm -rf "$src"
}

key=$( { declare -f build; echo "$gitea_version $ldflags"; go version; } | sha256sum | cut -c1-16)
dest="$cache_root/tools/gitea-$key"

link() {
  mkdir -p "$bin_dir"
  ln -sfn "$dest/gitea" "$bin_dir/gitea"
  ln -sfn "$dest/static" "$bin_dir/gitea-static"
}

if [ -x "$dest/gitea" ]; then
  link
  exit 0
fi

mkdir -p "$cache_root/tools"
exec 9>"$cache_root/tools/gitea.lock"
flock 9
if [ ! -x "$dest/gitea" ]; then
  tmp=$(mktemp -d "$cache_root/tools/.build-gitea-XXXXXX")
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  echo "Building Gitea $gitea_version into $dest (first run only, several minutes; cached afterwards)" >&2
  start=$SECONDS
  build "$tmp"
  mv "$tmp" "$dest"
  trap - EXIT
  echo "Built Gitea in $((SECONDS - start))s" >&2
fi
link
"$bin_dir/gitea" --version 2>&1 | sed -n 1p >&2
