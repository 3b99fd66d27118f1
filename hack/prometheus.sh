#!/usr/bin/env bash
# Makes a Prometheus server available to the tests as bin/prometheus: the
# Debian package (2.x), installed when missing. The package does not start a
# service; tests start their own server on 127.0.0.1 with a temporary
# configuration and data directory.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v prometheus >/dev/null 2>&1 && [ ! -x /usr/bin/prometheus ]; then
  echo "Installing Prometheus from the Debian package (first run only)" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Debian's package may try to start a service where an init system runs; the
  # tests never use it.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl stop prometheus || true
  fi
fi
mkdir -p "$root/bin"
ln -sfn "$(command -v prometheus || echo /usr/bin/prometheus)" "$root/bin/prometheus"
"$root/bin/prometheus" --version 2>&1 | sed -n 1p >&2
