#!/usr/bin/env bash
# Installs a compose client that validates docker-compose.yml without a Docker engine: Debian's docker-compose
# package (Compose v1, 1.29 on Debian 12, which reads the Compose Specification: no `version:` key, `x-` fields,
# `depends_on` conditions). tests/dashboards/test_compose.py runs `docker-compose config` with it. Nothing is started:
# the package is the client only, it needs no daemon for `config`.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
command -v docker-compose >/dev/null
