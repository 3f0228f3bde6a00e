#!/usr/bin/env bash
# Installs the pinned node-llama-cpp (llama.cpp's prebuilt linux-x64 binaries ride in
# @node-llama-cpp/linux-x64) into tests/export/node/node_modules (git-ignored), from the
# committed package.json / package-lock.json; no install scripts run, nothing is built.
set -e
cd "$(dirname "$0")/node"
if [ -d node_modules/@node-llama-cpp/linux-x64 ] && [ -d node_modules/node-llama-cpp ]; then exit 0; fi
command -v npm >/dev/null || { echo "npm is missing (scripts/deps.sh test installs nodejs and npm)" >&2; exit 1; }
npm i -E --ignore-scripts --no-audit --no-fund --loglevel=error >&2
