#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver when missing (the report test renders the HTML
# report in them). Needs root or password-less sudo; otherwise says what to install and stops.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "chromium and chromium-driver are missing and this user cannot install them:" >&2
  echo "  sudo apt-get install -y chromium chromium-driver" >&2
  exit 1
fi
echo "installing chromium and chromium-driver (Debian packages) for the report test ..."
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver >/dev/null
