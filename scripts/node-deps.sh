#!/usr/bin/env bash
# Installs the pinned npm packages of tests/node/package.json (+ package-lock.json) into
# tests/node/node_modules (git-ignored), only when missing or out of date. No install scripts run.
#   scripts/node-deps.sh        (needs node and npm: Debian packages nodejs, npm)
set -euo pipefail
cd "$(dirname "$0")/../tests/node"
stamp=node_modules/.muscle-installed
if [ -f "$stamp" ] && [ "$stamp" -nt package.json ] && [ "$stamp" -nt package-lock.json ]; then exit 0; fi
command -v npm >/dev/null || { echo "node-deps: npm is missing (apt-get install nodejs npm)" >&2; exit 1; }
echo "node-deps: installing tests/node packages (pinned, --ignore-scripts)" >&2
npm i -E --ignore-scripts --no-audit --no-fund --loglevel=error >&2
touch "$stamp"
