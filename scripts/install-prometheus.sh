#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus + promtool) without starting its service.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# RUNLEVEL=1 keeps the package's maintainer scripts from starting a daemon on :9090.
$SUDO env RUNLEVEL=1 apt-get update -qq
$SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# Debian's maintainer scripts may start it anyway where an init system is present; tests start their own.
$SUDO pkill -x prometheus 2>/dev/null || true
command -v promtool >/dev/null
