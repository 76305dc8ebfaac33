# Sourced by run.sh and test.sh: installs the Debian 12 packages CLM needs, only those missing.
# shellcheck shell=bash

CLM_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libspdlog-dev prometheus-cpp-dev libsqlite3-dev sqlite3
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus python3 python3-yaml
  libssl-dev openssl
  # Beta quantiles for the bounds of deployed maps (Boost.Math, header-only).
  libboost-dev
  # Fuzzing (fuzz/, build-fuzz/): clang, its libFuzzer + ASan/UBSan runtimes, llvm-symbolizer for traces.
  clang libclang-rt-14-dev llvm
)

clm_install_deps() {
  local missing=()
  local pkg
  for pkg in "${CLM_PACKAGES[@]}" "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "Installing missing packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
