#!/usr/bin/env bash
# Installs loomd as a legacy Docker plugin (the socket /run/docker/plugins/loom.sock, driver
# name "loom"), run by systemd before Docker. From a checkout with `npm ci` done:
#
#   sudo plugin-config/install.sh              # install or update (idempotent), enable, (re)start
#   sudo plugin-config/install.sh --uninstall  # stop, disable, remove; keeps /var/lib/loom and
#                                              # /etc/default/loom (--purge removes them too)
# Options:
#   --no-start   install and enable, but do not (re)start loomd now
#   --root DIR   install into another root filesystem (packaging, tests): no systemctl calls
#
# What it installs:
#   /opt/loom                          dist/ and production node_modules (offline: pruned from
#                                      this checkout's node_modules), package.json
#   /etc/systemd/system/loom.service   plugin-config/loom.service with the path of node
#   /etc/default/loom                  settings (LOOM_* variables), only if absent
#   /usr/local/bin/loomd, loomctl      -> /opt/loom/dist/driver/main.js, .../cli/loomctl.js
# Updating restarts loomd: calls in flight finish, bridges, veths and rules stay up meanwhile.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=/
MODE=install
START=1
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) MODE=uninstall ;;
    --purge) PURGE=1 ;;
    --no-start) START=0 ;;
    --root) ROOT=${2:?--root needs a directory}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
ROOT=${ROOT%/}
PREFIX="$ROOT/opt/loom"
UNIT="$ROOT/etc/systemd/system/loom.service"
DEFAULTS="$ROOT/etc/default/loom"
BIN="$ROOT/usr/local/bin/loomd"
CTL="$ROOT/usr/local/bin/loomctl"
STATE="$ROOT/var/lib/loom"

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || [ -n "$ROOT" ] || die "run as root"
systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

if [ "$MODE" = uninstall ]; then
  if systemd; then
    systemctl disable --now loom.service 2>/dev/null || true
  fi
  if command -v docker >/dev/null && [ -z "$ROOT" ]; then
    nets=$(docker network ls -q --filter driver=loom 2>/dev/null || true)
    [ -z "$nets" ] || log "warning: Docker still has loom networks ($(echo $nets)); remove them with docker network rm (their bridges stay until then)"
  fi
  rm -f "$UNIT" "$BIN" "$CTL"
  rm -rf "$PREFIX"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$STATE" "$DEFAULTS"
    log "removed loom, its state ($STATE) and settings ($DEFAULTS)"
  else
    log "removed loom; kept its state ($STATE) and settings ($DEFAULTS): --purge removes them"
  fi
  if systemd; then systemctl daemon-reload; fi
  exit 0
fi

# ---- install / update ----------------------------------------------------------------------
node=$(command -v node) || die "node (>= 20) is missing"
major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "node $("$node" --version) is too old: loom needs node >= 20"
for t in nft:nftables iptables:iptables tc:iproute2; do
  command -v "${t%%:*}" >/dev/null || [ -x "/usr/sbin/${t%%:*}" ] || log "warning: ${t%%:*} is missing (apt-get install ${t#*:})"
done
[ -x "$REPO/node_modules/.bin/tsc" ] || die "no dependencies in $REPO: run npm ci first"

log "building"
(cd "$REPO" && npm run -s build)
mkdir -p "$ROOT/opt"
stage=$(mktemp -d "$ROOT/opt/.loom-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$REPO/package.json" "$REPO/package-lock.json" "$stage/"
mkdir -p "$stage/dist"
cp -a "$REPO/dist/lib" "$REPO/dist/driver" "$REPO/dist/ipam-driver" "$stage/dist/"
find "$stage/dist" -name '*.map' -exec rm -f {} +
cp -a "$REPO/node_modules" "$stage/node_modules"
if ! out=$(cd "$stage" && npm prune --omit=dev --offline --no-audit --no-fund 2>&1); then
  printf '%s\n' "$out" >&2
  die "npm prune failed"
fi
chmod 755 "$stage"
# Swap in one step: a running loomd keeps the files it loaded.
if [ -d "$PREFIX" ]; then
  mv "$PREFIX" "$PREFIX.old.$$"
  mv "$stage" "$PREFIX"
  rm -rf "$PREFIX.old.$$"
else
  mv "$stage" "$PREFIX"
fi
trap - EXIT

mkdir -p "$(dirname "$UNIT")" "$(dirname "$DEFAULTS")" "$(dirname "$BIN")"
sed "s|@NODE@|$node|" "$REPO/plugin-config/loom.service" >"$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT"
ln -sfn /opt/loom/dist/driver/main.js "$BIN"
ln -sfn /opt/loom/dist/driver/cli/loomctl.js "$CTL"
if [ ! -e "$DEFAULTS" ]; then
  cat >"$DEFAULTS" <<'EOF'
# loomd settings (see `loomd --help` and docs/install.md); restart loom.service after a change.
#LOOM_LOG_LEVEL=info
#LOOM_DEFAULT_POOLS=172.16.0.0/12:16,192.168.0.0/16:20
#LOOM_STATE_DIR=/var/lib/loom
#LOOM_ADMIN_SOCKET=/run/loom/admin.sock
#DOCKER_HOST=unix:///var/run/docker.sock
# Multi-host overlay (etcd control plane):
#LOOM_ETCD_ENDPOINTS=https://10.0.0.1:2379,https://10.0.0.2:2379
#LOOM_ETCD_CA=/etc/loom/etcd-ca.pem
#LOOM_ETCD_CERT=/etc/loom/etcd-client.pem
#LOOM_ETCD_KEY=/etc/loom/etcd-client-key.pem
EOF
fi
log "installed $("$node" -p "require('$PREFIX/package.json').version") in $PREFIX ($(du -sh "$PREFIX" | cut -f1)), unit $UNIT"

if systemd; then
  systemctl daemon-reload
  systemctl enable loom.service
  if [ "$START" = 1 ]; then
    systemctl restart loom.service
    log "loom.service is $(systemctl is-active loom.service); socket /run/docker/plugins/loom.sock"
  fi
elif [ -z "$ROOT" ]; then
  log "systemd is not running here: start loomd yourself (before dockerd): $node /opt/loom/dist/driver/main.js"
fi
