#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus + promtool) without starting its service: tests start their own
# Prometheus on free ports, and a daemon on :9090 would only cost memory.
set -euo pipefail
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
$SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null
