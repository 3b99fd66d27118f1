#!/usr/bin/env bash
# Copies the CRDs of the traffic providers from their Go modules (served by
# the Go module proxy, checked against the checksum database) into the cache
# and links them as bin/crds/{istio,gatewayapi,traefik,contour,knative}. Tests install them
# into the real API server; nothing third-party is committed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}

ISTIO=istio.io/api@v1.32.0
GATEWAY_API=sigs.k8s.io/gateway-api@v1.6.3
TRAEFIK=github.com/traefik/traefik/v3@v3.7.13
CONTOUR=github.com/projectcontour/contour@v1.33.8
KNATIVE=knative.dev/serving@v0.51.0

key=$(echo "$ISTIO $GATEWAY_API $TRAEFIK $CONTOUR $KNATIVE v1" | sha256sum | cut -c1-16)
dest="$cache_root/crds/$key"
if [ ! -d "$dest" ]; then
  mkdir -p "$cache_root/crds"
  tmp=$(mktemp -d "$cache_root/crds/.build-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  dir_of() { (cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'); }
  mkdir -p "$tmp/istio" "$tmp/gatewayapi" "$tmp/traefik" "$tmp/contour" "$tmp/knative"
  cp "$(dir_of "$ISTIO")/kubernetes/customresourcedefinitions.gen.yaml" "$tmp/istio/"
  for f in "$(dir_of "$GATEWAY_API")"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
    case "$f" in *_vap_*) continue ;; esac # a ValidatingAdmissionPolicy, not a CRD
    cp "$f" "$tmp/gatewayapi/"
  done
  cp "$(dir_of "$TRAEFIK")/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" "$tmp/traefik/traefik-crds.yaml"
  # Contour's CRDs (HTTPProxy and the others) in one file.
  cp "$(dir_of "$CONTOUR")/examples/contour/01-crds.yaml" "$tmp/contour/"
  # Knative Serving's CRDs (Service, Configuration, Revision, Route, ...).
  for f in "$(dir_of "$KNATIVE")"/config/core/300-resources/*.yaml; do
    cp "$f" "$tmp/knative/"
  done
  chmod -R u+w "$tmp"
  mv "$tmp" "$dest"
  trap - EXIT
fi
mkdir -p "$root/bin"
ln -sfn "$dest" "$root/bin/crds"
