#!/usr/bin/env bash
# Installs Debian's headless-capable `chromium` and `poppler-utils` (pdftotext): the chargeback statement's HTML page
# is rendered to PNG and PDF in the tests, and the PDF's text is checked against the JSON statement.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Another apt run on the machine (a parallel install) holds the dpkg lock for a while: wait for it instead of failing.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  chromium poppler-utils fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
command -v pdftotext >/dev/null
