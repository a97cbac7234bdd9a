#!/usr/bin/env bash
# The one place that installs what loom needs on a Debian (12) host; used by `npm run quickstart`
# and `npm test` (via test/setup-host.sh). Idempotent and quick when everything is present.
#
#   scripts/setup-host.sh quickstart   what running loom for real needs: nftables (loom's firewall),
#                                      iproute2 (tc), util-linux (nsenter); and, when no Docker engine
#                                      answers here, what a private engine needs: docker.io,
#                                      iptables, busybox-static (the demo image)
#   scripts/setup-host.sh test         everything the test tiers need (adds iperf3, socat, etcd)
#
# It says what it installs and why; on a system it cannot set up (not root, no apt-get) it says
# exactly what is missing and exits 1.
set -euo pipefail
profile=${1:-test}
say() { echo "setup-host: $*"; }

case "$profile" in
  quickstart|test) ;;
  *) say "unknown profile '$profile' (quickstart or test)"; exit 2 ;;
esac

# command:package pairs
pairs=(nft:nftables ip:iproute2 tc:iproute2 nsenter:util-linux unshare:util-linux mountpoint:util-linux taskset:util-linux)
engine_answers() { command -v docker >/dev/null 2>&1 && timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if [ "$profile" = test ] || ! engine_answers; then
  # A private engine in a throwaway namespace: dockerd, iptables (its FORWARD policy), busybox.
  pairs+=(dockerd:docker.io iptables:iptables busybox:busybox-static)
fi
if [ "$profile" = test ]; then
  pairs+=(iperf3:iperf3 socat:socat etcd:etcd-server etcdctl:etcd-client strace:strace)
fi

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
missing() {
  local out=() pair
  for pair in "${pairs[@]}"; do have "${pair%%:*}" || out+=("${pair#*:}"); done
  [ -x /bin/busybox ] || [[ " ${pairs[*]} " != *" busybox:"* ]] || out+=(busybox-static)
  printf '%s\n' "${out[@]}" | sort -u | grep -v '^$' || true
}

mapfile -t need < <(missing)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing packages: ${need[*]}; run as root (loom manages bridges and firewall rules) or install them first"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing packages: ${need[*]}; this system has no apt-get: install them with its package manager, then run again"
    exit 1
  fi
  say "installing ${need[*]} (apt-get; profile $profile)"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine (or container image) has empty package lists: always update first.
  if ! timeout 600 apt-get update -qq; then
    say "apt-get update failed: check this machine's apt sources and that it reaches their mirror"
    exit 1
  fi
  if ! timeout 1200 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    say "apt-get could not install ${need[*]}; see the messages above"
    exit 1
  fi
  mapfile -t still < <(missing)
  if [ ${#still[@]} -gt 0 ]; then
    say "still missing after the install: ${still[*]}"
    exit 1
  fi
fi
# Test hosts (and the quick start's private engine) live under these paths.
mkdir -p /tmp/loom-e2e /run/loom-test
say "ok ($profile)"
