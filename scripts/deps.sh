#!/usr/bin/env bash
# Install the Debian packages certgate needs to build and test.
# Usage: scripts/deps.sh [build|test|all]   (default: all)
set -euo pipefail
what=${1:-all}
build_pkgs="build-essential cmake pkg-config libssl-dev libev-dev libjansson-dev
  libcmocka-dev node-llhttp libsqlite3-dev libsodium-dev libpq-dev"
test_pkgs="curl openssl python3 python3-pytest python3-cryptography
  python3-paho-mqtt clang libnss3-tools mosquitto mosquitto-clients haproxy"
case "$what" in
  build) pkgs=$build_pkgs ;;
  test) pkgs=$test_pkgs ;;
  all) pkgs="$build_pkgs $test_pkgs" ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac
missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
