#!/bin/bash
# loom-dind: the entrypoint of loom's DinD image (plugin-config/dind/build.sh, docs/ci.md).
#
#   docker run -d --privileged [-e LOOM_*=...] IMAGE [DOCKERD ARGS...]
#
# Checks what Docker-in-Docker needs from the host (it never loads kernel modules: a container
# cannot, the host must), picks the inner engine's iptables backend, then starts loomd as a legacy
# plugin (socket /run/docker/plugins/loom.sock, state /var/lib/loom) and, once its socket answers,
# dockerd with DOCKERD ARGS (default: -H unix:///var/run/docker.sock). It stays PID 1: it
# restarts loomd if it dies, stops both on SIGTERM, and exits when dockerd exits.
#
#   docker exec CONTAINER loom-dind restart-dockerd   restarts the inner dockerd only
#
# Environment: LOOM_DIND=off (plain inner engine, no loomd), LOOM_DIND_IPTABLES=auto|nft|legacy
# (default auto: nft when the kernel has nf_tables), LOOM_DIND_TCP=ADDR:PORT (also listen on plain
# TCP), every LOOM_* setting of loomd (loomd --help).
set -uo pipefail
log() { echo "loom-dind: $*" >&2; }
die() { log "error: $*"; exit 1; }
FLAG=/run/loom-dind/restart-dockerd
PIDFILE=/run/loom-dind/dockerd.pid

if [ "${1:-}" = restart-dockerd ]; then
  pid=$(cat "$PIDFILE" 2>/dev/null) || die "no dockerd is running"
  touch "$FLAG"
  kill -TERM "$pid"
  for _ in $(seq 1 300); do [ -e "$FLAG" ] || exit 0; sleep 0.1; done
  die "dockerd did not restart within 30 s"
fi
[ $$ = 1 ] || log "warning: not PID 1 (the image's entrypoint is meant to run as the container's init)"
mkdir -p /run/loom-dind

# ---- what the host must provide ---------------------------------------------------------------
# A kernel feature missing in a container means a module the host has not loaded (modprobe inside
# would need the host's /lib/modules and changes the host's kernel: the host's job).
probe_link() { # TYPE MODULE [ARGS...]
  local type=$1 module=$2 err
  shift 2
  if err=$(ip link add loomdind-probe type "$type" "$@" 2>&1); then
    ip link del loomdind-probe 2>/dev/null
    return 0
  fi
  case "$err" in
    *"Operation not permitted"*) die "cannot create a $type link ($err): run the container with --privileged" ;;
    *) log "the kernel has no $type links ($err): load the module on the host: modprobe $module"; return 1 ;;
  esac
}
probe_link bridge bridge || die "the bridge module is required"
probe_link veth veth || die "the veth module is required"
if ! probe_link vxlan vxlan id 42 dstport 4789; then
  [ -z "${LOOM_ETCD_ENDPOINTS:-}" ] || die "loom's overlay (LOOM_ETCD_ENDPOINTS is set) needs vxlan"
  log "warning: without vxlan only loom's bridge networks work here"
fi
nft list tables >/dev/null 2>&1 || {
  err=$(nft list tables 2>&1)
  case "$err" in
    *"Operation not permitted"*) die "nft: $err: run the container with --privileged" ;;
    *) die "nft: $err: the host's kernel needs nf_tables (modprobe nf_tables on the host)" ;;
  esac
}
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
  log "note: no br_netfilter (modprobe br_netfilter on the host if your containers rely on iptables rules for bridged traffic)"
# /proc/sys/net is per network namespace: a privileged container may write its own; a plain one has
# /proc/sys read-only.
echo 1 2>/dev/null >/proc/sys/net/ipv4/ip_forward || die "/proc/sys/net is read-only: run the container with --privileged"
grep -qw overlay /proc/filesystems || log "warning: no overlay filesystem: dockerd falls back to vfs (slow); modprobe overlay on the host"
fstype=$(stat -f -c %T /var/lib/docker 2>/dev/null || echo unknown)
[ "$fstype" != overlayfs ] || log "warning: /var/lib/docker is on overlayfs (overlay2 cannot nest): mount a volume there (-v /var/lib/docker, the image declares it)"

# ---- cgroups ------------------------------------------------------------------------------------
# On a cgroup2 host the container's processes move to a leaf (/init) so that dockerd may enable
# the controllers for its containers (as the docker:dind image does); v1 needs nothing.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
  sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
fi
mountpoint -q /sys/kernel/security 2>/dev/null || mount -t securityfs none /sys/kernel/security 2>/dev/null || true

# ---- the inner engine's iptables backend --------------------------------------------------------
# dockerd and loom must use the same one. nf_tables when the kernel has it (checked above, loom
# needs it anyway); legacy only when asked for (it needs the host's ip_tables modules).
backend=${LOOM_DIND_IPTABLES:-auto}
[ "$backend" != auto ] || backend=nft
case "$backend" in
  nft|legacy)
    update-alternatives --quiet --set iptables "/usr/sbin/iptables-$backend" &&
      update-alternatives --quiet --set ip6tables "/usr/sbin/ip6tables-$backend" || die "cannot select iptables-$backend"
    iptables -w -L -n >/dev/null 2>&1 || die "iptables ($backend): $(iptables -w -L -n 2>&1 | tail -1)" ;;
  *) die "LOOM_DIND_IPTABLES must be auto, nft or legacy, got $backend" ;;
esac

# ---- MTU ----------------------------------------------------------------------------------------
# The container's uplink may be narrower than 1500 (cloud CI runners: 1450, 1460). Docker's own
# bridge takes it through --mtu; loom's overlays derive theirs from the underlay's MTU by
# themselves, loom's bridge networks default to 1500: pass -o com.docker.network.driver.mtu=N.
uplink=$(ip -o route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
mtu=$(cat "/sys/class/net/${uplink:-none}/mtu" 2>/dev/null || echo 1500)
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-H unix:///var/run/docker.sock)
# For CI services that take no command (GitHub Actions): LOOM_DIND_TCP=0.0.0.0:2375 adds a plain
# TCP listener (no TLS: only on the job's private network).
# An explicit --tls=false spares dockerd 20.10's 15 s "Startup is intentionally being slowed down"
# pause for a TCP listener without TLS (--tlsverify=false would turn TLS on: no certificates).
[ -z "${LOOM_DIND_TCP:-}" ] || args+=(-H "tcp://$LOOM_DIND_TCP" --tls=false)
if [ "$mtu" -lt 1500 ] && [[ " ${args[*]} " != *" --mtu"* ]]; then
  args+=(--mtu "$mtu")
  log "uplink $uplink has MTU $mtu: dockerd --mtu $mtu; give loom bridge networks -o com.docker.network.driver.mtu=$mtu"
fi

# ---- loomd, then dockerd ------------------------------------------------------------------------
loomd_pid=""
dockerd_pid=""
start_loomd() {
  mkdir -p /run/docker/plugins /var/lib/loom /run/loom
  rm -f /run/docker/plugins/loom.sock
  LOOM_STATE_DIR=${LOOM_STATE_DIR:-/var/lib/loom} DOCKER_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock} \
    /usr/local/bin/node --max-semi-space-size=2 /opt/loom/dist/driver/main.js &
  loomd_pid=$!
  for _ in $(seq 1 200); do
    [ -S /run/docker/plugins/loom.sock ] && return 0
    kill -0 "$loomd_pid" 2>/dev/null || die "loomd exited before it opened its socket (its output is above)"
    sleep 0.05
  done
  die "loomd did not open /run/docker/plugins/loom.sock within 10 s"
}
start_dockerd() {
  rm -f /var/run/docker.pid
  dockerd "${args[@]}" &
  dockerd_pid=$!
  echo "$dockerd_pid" >"$PIDFILE"
}
stop_all() {
  trap - TERM INT
  log "stopping"
  [ -z "$dockerd_pid" ] || { kill -TERM "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null; }
  [ -z "$loomd_pid" ] || { kill -TERM "$loomd_pid" 2>/dev/null; wait "$loomd_pid" 2>/dev/null; }
  exit 0
}
trap stop_all TERM INT

if [ "${LOOM_DIND:-on}" != off ]; then
  start_loomd
  log "loomd is up (driver loom, $(iptables --version)); starting dockerd ${args[*]}"
else
  log "LOOM_DIND=off: plain dockerd ${args[*]} ($(iptables --version))"
fi
start_dockerd
loomd_restarts=0
while :; do
  wait -n
  if ! kill -0 "$dockerd_pid" 2>/dev/null; then
    wait "$dockerd_pid" 2>/dev/null
    rc=$?
    if [ -e "$FLAG" ]; then
      log "restarting dockerd"
      start_dockerd
      rm -f "$FLAG"
      continue
    fi
    log "dockerd exited ($rc)"
    [ -z "$loomd_pid" ] || { kill -TERM "$loomd_pid" 2>/dev/null; wait "$loomd_pid" 2>/dev/null; }
    exit "$rc"
  fi
  if [ -n "$loomd_pid" ] && ! kill -0 "$loomd_pid" 2>/dev/null; then
    loomd_restarts=$((loomd_restarts + 1))
    [ "$loomd_restarts" -le 10 ] || die "loomd died 10 times; stopping"
    log "loomd exited; restarting it ($loomd_restarts)"
    sleep 1
    start_loomd
  fi
done
