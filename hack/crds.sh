#!/usr/bin/env bash
# Copies the CRDs of the traffic providers from their Go modules (served by
# the Go module proxy, checked against the checksum database) into the cache
# and links them as bin/crds/{istio,gatewayapi,traefik,apisix,smi,contour,knative,flagger}. Tests install them
# into the real API server; nothing third-party is committed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${SLUICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}

ISTIO=istio.io/api@v1.32.0
GATEWAY_API=sigs.k8s.io/gateway-api@v1.6.3
TRAEFIK=github.com/traefik/traefik/v3@v3.7.13
# The last apisix-ingress-controller the proxy serves; its v1 CRDs include
# ApisixRoute apisix.apache.org/v2.
APISIX=github.com/apache/apisix-ingress-controller@v1.7.0
# SMI's TrafficSplit CRD ships as apiextensions.k8s.io/v1beta1 (no longer
# served by API servers): hack/smicrd converts it to v1 (see docs/routers.md).
SMI=github.com/servicemeshinterface/smi-sdk-go@v0.5.0
CONTOUR=github.com/projectcontour/contour@v1.33.8
KNATIVE=knative.dev/serving@v0.51.0
# Flagger's own CRDs, for the side-by-side benchmark (bench/scale
# -compare-flagger) and its test that Sluice renders valid Flagger Canaries.
FLAGGER=github.com/fluxcd/flagger@v1.44.0

key=$(echo "$ISTIO $GATEWAY_API $TRAEFIK $APISIX $SMI $CONTOUR $KNATIVE $FLAGGER v4" | sha256sum | cut -c1-16)
dest="$cache_root/crds/$key"
if [ ! -d "$dest" ]; then
  mkdir -p "$cache_root/crds"
  tmp=$(mktemp -d "$cache_root/crds/.build-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  dir_of() { (cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'); }
  mkdir -p "$tmp/istio" "$tmp/gatewayapi" "$tmp/traefik" "$tmp/apisix" "$tmp/smi" "$tmp/contour" "$tmp/knative" "$tmp/flagger"
  cp "$(dir_of "$ISTIO")/kubernetes/customresourcedefinitions.gen.yaml" "$tmp/istio/"
  for f in "$(dir_of "$GATEWAY_API")"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
    case "$f" in *_vap_*) continue ;; esac # a ValidatingAdmissionPolicy, not a CRD
    cp "$f" "$tmp/gatewayapi/"
  done
  cp "$(dir_of "$TRAEFIK")/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" "$tmp/traefik/traefik-crds.yaml"
  cp "$(dir_of "$APISIX")/samples/deploy/crd/v1/ApisixRoute.yaml" "$tmp/apisix/"
  (cd "$root" && go run ./hack/smicrd <"$(dir_of "$SMI")/crds/split.yaml" >"$tmp/smi/split.yaml")
  # Contour's CRDs (HTTPProxy and the others) in one file.
  cp "$(dir_of "$CONTOUR")/examples/contour/01-crds.yaml" "$tmp/contour/"
  # Knative Serving's CRDs (Service, Configuration, Revision, Route, ...).
  for f in "$(dir_of "$KNATIVE")"/config/core/300-resources/*.yaml; do
    cp "$f" "$tmp/knative/"
  done
  cp "$(dir_of "$FLAGGER")/artifacts/flagger/crd.yaml" "$tmp/flagger/"
  chmod -R u+w "$tmp"
  mv "$tmp" "$dest"
  trap - EXIT
fi
mkdir -p "$root/bin"
ln -sfn "$dest" "$root/bin/crds"

# KEDA's ScaledObject CRD (autoscalerRef kind ScaledObject), linked as
# bin/crds-keda. KEDA's module needs a newer Go than Sluice builds with, so
# `go mod download` fetches and verifies its zip but will not extract it:
# the CRD is read from the verified zip.
KEDA=github.com/kedacore/keda/v2@v2.21.1
keda_dest="$cache_root/crds/keda-$(echo "$KEDA v1" | sha256sum | cut -c1-16)"
if [ ! -d "$keda_dest" ]; then
  tmp=$(mktemp -d "$cache_root/crds/.build-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  zip=$( (cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$KEDA" || true) | sed -n 's/^[[:space:]]*"Zip": "\(.*\)",$/\1/p')
  [ -f "$zip" ] || { echo "crds.sh: could not download $KEDA" >&2; exit 1; }
  unzip -q -j -d "$tmp/out" "$zip" "${KEDA}/config/crd/bases/keda.sh_scaledobjects.yaml"
  chmod -R u+w "$tmp/out"
  mv "$tmp/out" "$keda_dest"
  rm -rf "$tmp"
  trap - EXIT
fi
ln -sfn "$keda_dest" "$root/bin/crds-keda"
