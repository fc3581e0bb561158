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
  # s3:// and http(s):// (docs/remote.md): libcurl; nginx serves shards to the tests
  libcurl4-openssl-dev nginx-light libxml2-dev
  # real data and real peers for tests and benchmarks
  dataset-fashion-mnist tar libarchive-tools file time hyperfine zip unzip gzip
  python3 python3-pytest python3-numpy python3-pil python3-torch python3-torchvision python3-lmdb
  liblmdb-dev
  # shardset serve (docs/serve.md): the HTTP server library, and the browser,
  # driver and load tool its tests use
  libcpp-httplib-dev chromium chromium-driver python3-selenium wrk
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The S3-compatible server the tests talk to (docs/remote.md): versitygw,
# a real S3 gateway (Apache-2.0) that checks every request's signature,
# built from the Go module proxy.
VERSITYGW_VERSION=v1.8.0
install_versitygw() {
  command -v versitygw >/dev/null 2>&1 && return 0
  if ! command -v go >/dev/null 2>&1; then
    # Only tests/test_remote.py needs it, and it says so.
    echo "install-deps: warning: no go command, so versitygw (the S3 server of" \
      "tests/test_remote.py) is not built; install Go and rerun" >&2
    return 0
  fi
  echo "install-deps: building versitygw $VERSITYGW_VERSION (go install)" >&2
  GOBIN=/usr/local/bin go install -trimpath \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >/dev/null 2>&1 || {
    echo "install-deps: go install of versitygw failed" >&2
    return 1
  }
}

if [ ${#missing[@]} -eq 0 ]; then
  install_versitygw
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_versitygw
