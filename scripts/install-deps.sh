#!/usr/bin/env bash
# Installs what shardset needs to build, test and run its demo, from Debian's
# packages. Idempotent: silent and quick when everything is already there.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config
  # the checked build: sanitizers and libFuzzer (docs/fuzzing.md)
  clang libclang-rt-14-dev
  # libraries (docs/README "Dependencies")
  libxxhash-dev libzstd-dev zlib1g-dev libfmt-dev libcli11-dev nlohmann-json3-dev libspng-dev
  libturbojpeg0-dev libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libsqlite3-dev sqlite3
  # the Python package (pybind11, the venv it is installed into)
  pybind11-dev python3-dev python3-venv
  # shardset mount (docs/mount.md): libfuse3 and its fusermount3 helper
  fuse3 libfuse3-dev
  # real data and real peers for tests and benchmarks
  dataset-fashion-mnist tar libarchive-tools file time hyperfine zip unzip gzip
  python3 python3-pytest python3-numpy python3-pil python3-torch python3-torchvision python3-lmdb
  liblmdb-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
