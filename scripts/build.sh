#!/bin/bash
# build.sh -- configure and build into build/ (or $BUILD_DIR). Extra args go to cmake,
# e.g. scripts/build.sh -DPGVIP_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DPGVIP_WERROR=ON "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
