#!/usr/bin/env bash
# Fails when the committed generated files (CRDs, RBAC, deepcopy) differ from
# what controller-gen produces from the markers now, or when Go files are not
# gofmt-ed. Regenerates into a temporary directory, so it never rewrites the
# tree and works the same with or without uncommitted changes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
gen="$root/bin/controller-gen"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

"$gen" crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config="$tmp/crd"
if ! diff -r "$tmp/crd" config/crd/bases >"$tmp/crd.diff"; then
  echo "config/crd/bases is stale: run 'make manifests' and commit the result" >&2
  head -40 "$tmp/crd.diff" >&2
  status=1
fi

"$gen" rbac:roleName=sluice-manager paths=./... output:rbac:artifacts:config="$tmp/rbac"
if ! diff -r "$tmp/rbac" config/rbac/generated >"$tmp/rbac.diff"; then
  echo "config/rbac/generated is stale: run 'make manifests' and commit the result" >&2
  head -40 "$tmp/rbac.diff" >&2
  status=1
fi

# controller-gen writes deepcopy in place: generate in a copy of the API package.
mkdir -p "$tmp/mod/api"
cp go.mod go.sum "$tmp/mod/"
cp -r api/. "$tmp/mod/api/"
mkdir -p "$tmp/mod/hack" && cp hack/boilerplate.go.txt "$tmp/mod/hack/"
(cd "$tmp/mod" && "$gen" object:headerFile=hack/boilerplate.go.txt paths=./api/...)
for f in $(cd api && find . -name 'zz_generated.*.go'); do
  if ! cmp -s "api/$f" "$tmp/mod/api/$f"; then
    echo "api/$f is stale: run 'make generate' and commit the result" >&2
    status=1
  fi
done

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files: run 'make fmt'" >&2
  echo "$unformatted" >&2
  status=1
fi
exit $status
