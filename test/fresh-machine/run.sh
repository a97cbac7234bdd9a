#!/usr/bin/env bash
# The fresh-machine test (`npm run test:fresh`, issue 17): the README's first command on a fresh
# Debian 12 that has Node 20 and nothing else (no docker.io, iptables, nftables, iproute2...).
#
#   1. a minimal bookworm rootfs (mmdebstrap minbase from the host's configured mirror, shaped like
#      the debian:bookworm image; cached as $LOOM_FRESH_CACHE/bookworm-<hash>.tar, kept);
#   2. plus the host's Node 20: /usr/bin/node and npm's package, nothing else;
#   3. plus a clean `git clone` of this repository at HEAD in /src (not the working tree);
#   4. inside it, as a privileged container (enter.sh: new mount, PID, UTS and IPC namespaces, the
#      host's network namespace), `cd /src && npm ci && npm run quickstart`: it must exit 0 and show
#      two containers talking over a loom network;
#   5. the unpacked rootfs is removed afterwards, also on failure; nothing mounted outlives the run.
#
# Environment: LOOM_FRESH_CACHE (default /var/cache/loom-fresh), LOOM_FRESH_TIMEOUT (seconds for
# step 4, default 900), LOOM_FRESH_KEEP=1 keeps the unpacked rootfs for a look after a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LOOM_FRESH_CACHE:-/var/cache/loom-fresh}
budget=${LOOM_FRESH_TIMEOUT:-900}
work_base=/var/tmp/loom-fresh
log() { echo "fresh-machine: $*" >&2; }
# shellcheck source=rootfs.sh
source "$here/rootfs.sh"

[ "$(id -u)" = 0 ] || { log "run as root (it builds a root filesystem and namespaces)"; exit 1; }
for tool in unshare pivot_root setpriv git tar timeout; do
  command -v "$tool" >/dev/null || { log "$tool is missing"; exit 1; }
done

# Mounts whose mount point is under $1, as the host's mount namespace sees them.
mounts_under() { awk -v p="$1/" 'index($2 "/", p) == 1 { print $2 }' /proc/self/mounts; }

# Removes a work directory, refusing while anything is mounted below it (rm must never walk
# into a /proc, /sys or /dev).
remove_work() {
  local dir=$1
  if [ -n "$(mounts_under "$dir")" ]; then
    log "still mounted under $dir, not removing it: $(mounts_under "$dir" | tr '\n' ' ')"
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

# Work directories of runs that were killed (their owner PID is gone) go first.
sweep_abandoned() {
  local dir pid
  for dir in "$work_base"/run-*; do
    [ -d "$dir" ] || continue
    pid=$(cat "$dir/owner" 2>/dev/null || echo 0)
    if [ "$pid" != 0 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
    log "removing $dir, left behind by a run that was killed"
    remove_work "$dir" || true
  done
}

inner_pid=""
work=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$inner_pid" ] && kill -0 "$inner_pid" 2>/dev/null; then
    # timeout -> unshare --kill-child: SIGKILL to PID 1 of the container ends every process in it.
    # (inner_pid is setpriv, which exec'd timeout: the same process.)
    kill -TERM "$inner_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$inner_pid" 2>/dev/null || break; sleep 0.2; done
  fi
  if [ -n "$work" ] && [ -d "$work" ]; then
    if [ "${LOOM_FRESH_KEEP:-}" = 1 ]; then
      log "kept $work/rootfs (LOOM_FRESH_KEEP=1); remove it with: rm -rf --one-file-system $work"
    else
      remove_work "$work" || rc=1
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work_base"
sweep_abandoned
sweep_builds "$cache"
start=$SECONDS
mirror=$(host_mirror) || { log "no bookworm mirror in the host's apt sources"; exit 1; }
rootfs_tar=""
cached_rootfs "$mirror" "$cache"
t_rootfs=$((SECONDS - start))

work="$work_base/run-$$"
mkdir -p "$work/rootfs"
echo $$ >"$work/owner"
rootfs=$work/rootfs
timeout 300 tar -C "$rootfs" --numeric-owner -xf "$rootfs_tar"

# Node 20 only: the host's node binary and npm's package (where `npm root -g` says it is).
npm_dir=$(npm root -g)/npm
[ -f "$npm_dir/bin/npm-cli.js" ] || { log "npm's package is not at $npm_dir"; exit 1; }
install -m 755 "$(command -v node)" "$rootfs/usr/bin/node"
mkdir -p "$rootfs/usr/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/bin/npx"
# Name resolution as a container runtime sets it up (Docker copies the host's resolv.conf).
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
printf '127.0.0.1\tlocalhost loom-fresh\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
echo loom-fresh >"$rootfs/etc/hostname"
# This machine reaches the npm registry through a TLS-intercepting egress proxy whose CA the host
# trusts through NODE_EXTRA_CA_CERTS; any machine on this network needs the same: the rootfs gets
# that CA bundle and that variable, nothing else of the host's configuration.
env_prefix=""
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  mkdir -p "$rootfs/etc/loom-fresh"
  cp "$NODE_EXTRA_CA_CERTS" "$rootfs/etc/loom-fresh/network-ca.crt"
  env_prefix="export NODE_EXTRA_CA_CERTS=/etc/loom-fresh/network-ca.crt; "
fi

# A clean clone at HEAD: committed work only, no node_modules, no build output.
head=$(git -C "$repo" rev-parse HEAD)
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] || log "the working tree has uncommitted changes: testing HEAD ($head) without them"
timeout 120 git clone --quiet --no-checkout "$repo" "$rootfs/src"
git -C "$rootfs/src" checkout --quiet --detach "$head"
t_prep=$((SECONDS - start))

for bin in dockerd iptables nft ip; do
  if chroot "$rootfs" sh -c "command -v $bin" >/dev/null 2>&1; then log "the fresh rootfs already has $bin"; exit 1; fi
done

log "running 'npm ci && npm run quickstart' in the fresh rootfs (budget ${budget}s)"
out=$work/quickstart.log
set +e
# pdeathsig at each hop: if this script dies (even by SIGKILL), timeout and unshare die with it,
# and unshare's --kill-child takes the container's PID 1, hence its whole PID namespace, along.
setpriv --pdeathsig KILL -- timeout --kill-after=20 "$budget" \
  setpriv --pdeathsig KILL -- unshare --mount --pid --uts --ipc --fork --kill-child --propagation private -- \
  bash "$here/enter.sh" "$rootfs" "${env_prefix}cd /src && npm ci && npm run quickstart" \
  >"$out" 2>&1 &
inner_pid=$!
# The output as it comes; tail ends by itself once the container is gone and $out is read to the end.
tail -n +1 -f --pid="$inner_pid" "$out" &
tail_pid=$!
wait "$inner_pid"
rc=$?
wait "$tail_pid"
set -e
inner_pid=""
t_total=$((SECONDS - start))
log "times: rootfs ${t_rootfs}s, prepared ${t_prep}s, total ${t_total}s"

fail() { log "FAILED: $*"; exit 1; }
[ "$rc" = 0 ] || fail "npm ci && npm run quickstart exited $rc"
grep -q 'done: two containers talked over a loom network' "$out" || fail "the quick start did not report two containers talking"
grep -Eq '3 packets transmitted, 3 (packets )?received' "$out" || fail "no ping between the two containers in the output"
mounted=$(mounts_under "$rootfs")
[ -z "$mounted" ] || fail "mounts left under the rootfs: $mounted"
log "ok: a fresh Debian 12 with only Node 20 ran 'npm ci && npm run quickstart' and two containers talked over a loom network"
