#!/usr/bin/env bash
# Installs what the test tiers need on a fresh Debian 12 machine (idempotent, quick when present):
# Docker 20.10 (docker.io), iptables/nftables, busybox-static for test images, iproute2, iperf3, etcd.
set -euo pipefail
need=()
for pair in dockerd:docker.io iptables:iptables nft:nftables busybox:busybox-static ip:iproute2 iperf3:iperf3 socat:socat etcd:etcd-server etcdctl:etcd-client nsenter:util-linux mountpoint:util-linux; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || [ -x "/sbin/$bin" ] || need+=("$pkg")
done
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-host: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Test hosts live under these paths; make sure they exist.
mkdir -p /tmp/loom-e2e /run/loom-test
echo "setup-host: ok"
