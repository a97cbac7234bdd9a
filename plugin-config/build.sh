#!/usr/bin/env bash
# Builds loom's managed plugin and registers it with the Docker engine in DOCKER_HOST:
#
#   npm run plugin:build                      # -> plugin "loom:latest"
#   PLUGIN_NAME=myorg/loom:1.2 npm run plugin:build
#
# 1. a base image: BASE_IMAGE when given (e.g. node:20-bookworm-slim from a registry);
#    otherwise, offline, a minimal root filesystem made of this Debian machine's own
#    files (node and its libraries, nft, iptables (nf_tables backend), tc, nsenter, a shell and
#    a few utilities for the build steps), cached as a tarball and `docker import`ed;
# 2. `docker build` (legacy builder, works offline with FROM a local image) of the
#    repository's Dockerfile: the build stage compiles with dev dependencies (from the
#    npm registry, or offline from this checkout's installed node_modules), the runtime
#    stage carries node, the firewall tools, dist/ and production node_modules only;
# 3. `docker create` + `docker export` of the runtime image into DIR/rootfs, plus
#    plugin-config/config.json as DIR/config.json;
# 4. `docker plugin create NAME DIR` (skipped with LOOM_PLUGIN_CREATE=0).
#
# Environment:
#   DOCKER_HOST          the engine (default: the docker CLI's default)
#   DOCKER               the docker CLI to use (default: docker)
#   PLUGIN_NAME          plugin name, with or without tag (default loom; tag latest)
#   BASE_IMAGE           use this image as the base instead of building one offline
#   LOOM_NPM_CI=1        install dependencies from the npm registry inside the build
#                        (default: copy this checkout's node_modules, offline)
#   LOOM_PLUGIN_DIR      where to write config.json + rootfs/ (default build/plugin)
#   LOOM_BASE_CACHE      where the offline base tarball is cached (default /var/cache/loom-build)
#   LOOM_PLUGIN_CREATE=0 only produce the plugin directory
# Everything the script creates in the engine is removed again, except the base image
# (kept as a cache, like a pulled base image; `docker rmi` it at will).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKER=${DOCKER:-docker}
NAME=${PLUGIN_NAME:-loom}
case "${NAME##*/}" in *:*) ;; *) NAME="$NAME:latest" ;; esac
OUT=${LOOM_PLUGIN_DIR:-$REPO/build/plugin}
CACHE=${LOOM_BASE_CACHE:-/var/cache/loom-build}
export DOCKER_BUILDKIT=0 # the legacy builder: offline with FROM a local image, no buildx needed

log() { printf 'plugin:build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
d() { "$DOCKER" "$@"; }

WORK=$(mktemp -d /tmp/loom-plugin-build.XXXXXX)
TAG="loom-plugin-build-$$-$RANDOM"
cleanup() {
  local rc=$?
  d rm -f "$TAG" >/dev/null 2>&1 || true
  d rmi "loom-plugin-rootfs:$TAG" >/dev/null 2>&1 || true
  # The build stage's image (untagged) is found by its label and this build's id.
  local ids
  ids=$(d images -q --filter "label=org.loom.build=$TAG" 2>/dev/null || true)
  [ -n "$ids" ] && d rmi $ids >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

d version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-default})"

# ---------------------------------------------------------------------------------------
# 1. The base image.
# ---------------------------------------------------------------------------------------
need_bin() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || die "$1 is missing: apt-get install -y --no-install-recommends $2"; }

# Copies a file to the same path under $1 (dereferenced), creating parent directories.
put() { mkdir -p "$1$(dirname "$2")"; cp -L --preserve=mode "$2" "$1$2"; }

# Copies the shared libraries an ELF file needs (ldd), each at its soname path.
put_libs() {
  local root=$1 f=$2 lib
  for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*\.so[^ ]*' || true); do
    [ -e "$root$lib" ] || put "$root" "$lib"
  done
}

make_base_tar() {
  local tar=$1 r="$WORK/base"
  local bins=(/usr/sbin/nft /usr/sbin/xtables-nft-multi /usr/sbin/tc /usr/bin/ip /usr/bin/nsenter)
  mkdir -p "$r"/usr/{bin,sbin,lib,lib64,local/bin,local/lib/node_modules} "$r"/{etc,tmp,root,var/lib,run,proc,sys,dev}
  chmod 1777 "$r/tmp"
  # Debian 12's merged /usr.
  for l in bin sbin lib lib64; do ln -s "usr/$l" "$r/$l"; done
  # node, as in the official image, and npm for the build stage (removed from the runtime stage).
  cp -L "$(command -v node)" "$r/usr/local/bin/node"
  put_libs "$r" "$(command -v node)"
  local npmdir
  npmdir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  cp -a "$npmdir" "$r/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  # The firewall and traffic-control tools (iptables with the nf_tables backend, like the host's),
  # ip (overlay networks' namespaces: `ip netns`, docs/overlay.md) and nsenter (loomd's helpers
  # run inside container and overlay namespaces: service discovery, re-plumbing, overlay bridges).
  for b in "${bins[@]}"; do put "$r" "$b"; put_libs "$r" "$b"; done
  for n in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save \
           iptables-nft iptables-nft-restore iptables-nft-save ip6tables-nft ip6tables-nft-restore ip6tables-nft-save; do
    ln -s xtables-nft-multi "$r/usr/sbin/$n"
  done
  local xt
  xt=$(dirname "$(ls /usr/lib/*/xtables/libxt_standard.so)")
  mkdir -p "$r$xt"
  cp -a "$xt/." "$r$xt/"
  for m in "$r$xt"/*.so; do put_libs "$r" "$m"; done
  # The shell and the few utilities the Dockerfile's RUN steps use (Debian's essential packages).
  local t
  for t in dash tar rm mkdir chmod find env cat ls ln cp mv; do
    t=$(readlink -f "$(command -v "$t")")
    put "$r" "$t"
    put_libs "$r" "$t"
  done
  ln -s dash "$r/usr/bin/sh"
  # The few /etc files the tools read.
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf 'hosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' >"$r/etc/nsswitch.conf"
  for f in /etc/protocols /etc/services /etc/ethertypes; do [ -e "$f" ] && put "$r" "$f"; done
  [ -d /etc/iproute2 ] && cp -a /etc/iproute2 "$r/etc/iproute2"
  printf '/usr/local/lib\n%s\n' "$(dirname "$xt")" >"$r/etc/ld.so.conf"
  ldconfig -r "$r" 2>/dev/null || true
  tar -C "$r" --numeric-owner -cf "$tar.tmp.$$" .
  mv "$tar.tmp.$$" "$tar"
  rm -rf "$r"
}

if [ -n "${BASE_IMAGE:-}" ]; then
  base=$BASE_IMAGE
  log "base image: $base (given)"
else
  need_bin node nodejs; need_bin npm npm; need_bin nft nftables; need_bin xtables-nft-multi iptables; need_bin tc iproute2; need_bin ip iproute2; need_bin nsenter util-linux
  # The cache key: this recipe and the versions of everything copied into the base.
  key=$( {
    sed -n '/^make_base_tar()/,/^}/p' "${BASH_SOURCE[0]}"
    node --version; sha256sum "$(readlink -f "$(command -v node)")" | cut -c1-16
    dpkg-query -W -f='${Package} ${Version}\n' nftables iptables iproute2 util-linux coreutils dash tar findutils libc6 2>/dev/null || true
    npm --version
  } | sha256sum | cut -c1-12)
  base="loom-base:$key"
  mkdir -p "$CACHE"
  tar="$CACHE/loom-base-$key.tar"
  if ! d image inspect "$base" >/dev/null 2>&1; then
    if [ ! -s "$tar" ]; then
      log "making the offline base root filesystem from this machine's files ($tar)"
      make_base_tar "$tar"
    fi
    d import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'CMD ["/bin/sh"]' "$tar" "$base" >/dev/null
  fi
  log "base image: $base (offline, from this machine's node $(node --version), nft, iptables-nft, tc)"
fi

# ---------------------------------------------------------------------------------------
# 2. The build context (only what the Dockerfile copies) and the image.
# ---------------------------------------------------------------------------------------
ctx="$WORK/context"
mkdir -p "$ctx"
cp "$REPO/Dockerfile" "$REPO/.dockerignore" "$REPO/package.json" "$REPO/package-lock.json" "$REPO/tsconfig.json" "$REPO/tsconfig.build.json" "$ctx/"
cp -a "$REPO/lib" "$REPO/driver" "$REPO/ipam-driver" "$ctx/"
if [ "${LOOM_NPM_CI:-0}" != 1 ]; then
  [ -d "$REPO/node_modules" ] || die "no node_modules in $REPO: run npm ci first (or LOOM_NPM_CI=1 to install inside the build)"
  # Offline: this checkout's dependencies (dev ones included: the build stage compiles) as one file.
  tar -C "$REPO" -cf "$ctx/offline-deps.tar" node_modules
fi
log "building the plugin image ($(d version --format '{{.Server.Version}}' 2>/dev/null) engine)"
if ! d build --rm --force-rm --build-arg "BASE_IMAGE=$base" --build-arg "BUILD_ID=$TAG" -t "loom-plugin-rootfs:$TAG" "$ctx" >"$WORK/build.log" 2>&1; then
  tail -n 40 "$WORK/build.log" >&2
  die "docker build failed"
fi

# ---------------------------------------------------------------------------------------
# 3. The plugin directory.
# ---------------------------------------------------------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT/rootfs"
d create --name "$TAG" "loom-plugin-rootfs:$TAG" >/dev/null
d export "$TAG" | tar -C "$OUT/rootfs" -xf -
# The driver name Docker will know the plugin by (name:tag) is what loom uses for networks it creates.
node -e 'const fs = require("fs"); const c = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  for (const e of c.env) if (e.name === "LOOM_DRIVER_NAME") e.value = process.argv[2];
  fs.writeFileSync(process.argv[3], JSON.stringify(c, null, 2) + "\n");' "$REPO/plugin-config/config.json" "$NAME" "$OUT/config.json"
[ -d "$OUT/rootfs/run/docker/plugins" ] || die "the rootfs lacks /run/docker/plugins"
log "plugin directory: $OUT (rootfs $(du -sh "$OUT/rootfs" | cut -f1), $(find "$OUT/rootfs" -type f | wc -l) files)"

# ---------------------------------------------------------------------------------------
# 4. The plugin.
# ---------------------------------------------------------------------------------------
if [ "${LOOM_PLUGIN_CREATE:-1}" = 1 ]; then
  d plugin create "$NAME" "$OUT" >/dev/null || die "docker plugin create $NAME failed (remove an older one first: docker plugin disable $NAME; docker plugin rm $NAME)"
  log "created plugin $NAME (disabled): docker plugin enable $NAME"
fi
