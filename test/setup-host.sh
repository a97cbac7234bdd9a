#!/usr/bin/env bash
# Installs what the test tiers need (Docker 20.10, iptables/nftables, busybox-static, iproute2, iperf3,
# socat, etcd, strace): the shared installer, profile "test" (the quick start uses profile "quickstart").
exec bash "$(dirname "$0")/../scripts/setup-host.sh" test
