#!/usr/bin/env bash
# Installs the Debian packages the suite runs for real, without starting their services: tests start their own
# Prometheus and Alertmanager on free ports, and daemons on :9090/:9093 would only cost memory.
#   bash scripts/install-debian-packages.sh                            # prometheus: prometheus + promtool
#   bash scripts/install-debian-packages.sh prometheus-alertmanager    # prometheus-alertmanager + amtool
#   bash scripts/install-debian-packages.sh chromium poppler-utils     # the HTML statement's PNG/PDF test
set -euo pipefail
PACKAGES=("${@:-prometheus}")
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# invoke-rc.d and deb-systemd-invoke ask /usr/sbin/policy-rc.d before starting a service; 101 means "not now".
# Docker images ship one already; elsewhere a temporary one is put in place for this install only. (An earlier
# version killed every process named prometheus afterwards instead, which could hit one the user runs.)
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  trap '$SUDO rm -f "$POLICY"' EXIT
fi
$SUDO env RUNLEVEL=1 apt-get update -qq
$SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}\n' "$package" | grep -q "install ok installed"
done
