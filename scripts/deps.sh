#!/usr/bin/env bash
# Installs the Debian packages muscle needs, only those missing.
#   scripts/deps.sh build   - to build the library and the program
#   scripts/deps.sh test    - plus what the tests need (PyTorch, SentencePiece, sanitizers, chromium
#                             for rendering report.html headless, OpenMPI for the
#                             data-parallel tests; the build uses MPI whenever mpicc is there;
#                             nodejs (with npm) for the pinned npm packages the tests install)
set -euo pipefail
build=(gcc make pkg-config libopenblas-openmp-dev libcjson-dev libutf8proc-dev libpcre2-dev libdnnl-dev)
test=(libcmocka-dev nodejs python3 python3-torch python3-numpy python3-sentencepiece clang libclang-rt-14-dev valgrind chromium libopenmpi-dev openmpi-bin)
want=("${build[@]}")
[ "${1:-build}" = test ] && want+=("${test[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: Debian's nodejs needs the separate npm package; a nodejs that ships its own npm (as
# NodeSource's does) conflicts with it, so it is asked for only when there is no npm at all
if [ "${1:-build}" = test ] && ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
