#!/usr/bin/env bash
# Makes headless Chromium available to the dashboard's browser tests as
# bin/chromium: Debian's chromium package, installed when missing (like
# hack/prometheus.sh). Test tools' own browser downloads (playwright install,
# puppeteer) cannot work here: there is no internet besides the registries.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "Installing Chromium from the Debian package (first run only)" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  start=$SECONDS
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  echo "Installed Chromium in $((SECONDS - start))s" >&2
fi
mkdir -p "$root/bin"
ln -sfn "$(command -v chromium || echo /usr/bin/chromium)" "$root/bin/chromium"
"$root/bin/chromium" --version 2>&1 | sed -n 1p >&2
