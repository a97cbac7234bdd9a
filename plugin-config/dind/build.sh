#!/usr/bin/env bash
# `npm run dind:build`: the DinD image of loom (issue 17), built offline like the plugin.
#
#   1. a Debian 12 rootfs with docker.io, iptables, nftables, iproute2 and busybox-static
#      (mmdebstrap minbase from the host's configured apt mirror: test/fresh-machine/rootfs.sh's
#      functions), cached as $LOOM_DIND_CACHE/dind-bookworm-<hash>.tar;
#   2. plus loom: plugin-config/install.sh --root (dist/ and the production node_modules in
#      /opt/loom, loomd, loomctl), this machine's node (20) in /usr/local/bin, etcd (Debian's
#      etcd-server, for `npm run cluster`) in /usr/local/bin, and the entrypoint
#      plugin-config/dind/entrypoint.sh, appended to a copy of that tarball;
#   3. `docker import` of it as $LOOM_DIND_IMAGE with the entrypoint, environment and the
#      volumes /var/lib/docker and /var/lib/loom.
#
# Run it: docker run -d --privileged --name dind $LOOM_DIND_IMAGE   (see docs/ci.md)
#
# `npm run dind:build -- --from-registry` (or LOOM_DIND_FROM_REGISTRY=1): the same image from public
# base images instead, on any machine with Docker and a registry (no Debian host, no root): `docker
# build` of the top-level Dockerfile's build stage (--target build, NODE_IMAGE as its base), then of
# plugin-config/dind/Dockerfile (BASE_IMAGE, default debian:bookworm-slim; NODE_IMAGE, default
# node:20-bookworm-slim; apt-get from the base's mirror). Dependencies come from the npm registry
# inside the build (LOOM_NPM_CI=0: this checkout's node_modules instead, Linux x64 only). Its
# image configuration (ENTRYPOINT, ENV, VOLUME) is the Dockerfile's, which the offline import reads.
#
# Environment: DOCKER_HOST (the engine to import into), DOCKER (the CLI, default docker),
# LOOM_DIND_IMAGE (default loom/dind:latest), LOOM_DIND_CACHE (default /var/cache/loom-dind),
# LOOM_DIND_IMPORT=0 (only build the cached rootfs and the image tarball, print its path),
# LOOM_DIND_SOURCE (a label org.loom.source on the image: what it was built from).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LOOM_DIND_CACHE:-/var/cache/loom-dind}
image=${LOOM_DIND_IMAGE:-loom/dind:latest}
docker=${DOCKER:-docker}
log() { echo "dind:build: $*" >&2; }
from_registry=${LOOM_DIND_FROM_REGISTRY:-0}
for arg in "$@"; do
  case "$arg" in
    --from-registry) from_registry=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument $arg (--from-registry, --help)"; exit 2 ;;
  esac
done

# The image configuration: the marked block of plugin-config/dind/Dockerfile, one instruction a
# line, for `docker import --change` (one place for both paths).
image_changes=()
while IFS= read -r line; do
  case "$line" in ENTRYPOINT*|CMD*|ENV*|VOLUME*) image_changes+=(--change "$line") ;; esac
done < <(sed -n '/^# ---- image configuration/,/^# ---- end of the image configuration/p' "$here/Dockerfile")
[ ${#image_changes[@]} -ge 8 ] || { log "no image configuration block in $here/Dockerfile"; exit 1; }

# ---- the registry path: docker build from public base images -------------------------------------
build_from_registry() {
  local start=$SECONDS rc=0
  tag="loom-dind-build-$$-$RANDOM" # globals: the EXIT trap runs after this function returned
  local base=${BASE_IMAGE:-debian:bookworm-slim} nodeimg=${NODE_IMAGE:-node:20-bookworm-slim}
  # The legacy builder (as plugin-config/build.sh): FROM a local image needs no registry, no buildx.
  export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
  ctx=$(mktemp -d /tmp/loom-dind-build.XXXXXX)
  # shellcheck disable=SC2317 # called by the trap
  cleanup_registry() {
    local ids
    "$docker" rmi "loom-dind-build:$tag" >/dev/null 2>&1 || true
    ids=$("$docker" images -q --filter "label=org.loom.build=$tag" 2>/dev/null || true)
    [ -z "$ids" ] || "$docker" rmi $ids >/dev/null 2>&1 || true
    rm -rf "$ctx"
  }
  trap cleanup_registry EXIT
  "$docker" version --format '{{.Server.Version}}' >/dev/null 2>&1 || { log "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-default})"; exit 1; }
  # The context: only what the two Dockerfiles copy (the repository's .dockerignore says the same).
  cp "$repo/Dockerfile" "$repo/.dockerignore" "$repo/package.json" "$repo/package-lock.json" "$repo/tsconfig.json" "$repo/tsconfig.build.json" "$ctx/"
  cp -a "$repo/lib" "$repo/driver" "$repo/ipam-driver" "$ctx/"
  mkdir -p "$ctx/plugin-config/dind"
  cp "$here/Dockerfile" "$here/entrypoint.sh" "$ctx/plugin-config/dind/"
  if [ "${LOOM_NPM_CI:-1}" = 0 ]; then
    [ -d "$repo/node_modules" ] || { log "LOOM_NPM_CI=0 but no node_modules in $repo: npm ci first"; exit 1; }
    tar -C "$repo" -cf "$ctx/offline-deps.tar" node_modules
  fi
  log "1/2 loom's build stage: docker build --target build (top-level Dockerfile) FROM $nodeimg"
  "$docker" build --rm --force-rm --target build --build-arg "BASE_IMAGE=$nodeimg" --build-arg "BUILD_ID=$tag" \
    ${LOOM_DIND_BUILD_NETWORK:+--network "$LOOM_DIND_BUILD_NETWORK"} -t "loom-dind-build:$tag" "$ctx" >"$ctx/build1.log" 2>&1 || rc=$?
  if [ $rc != 0 ]; then tail -n 40 "$ctx/build1.log" >&2; log "docker build --target build failed"; exit 1; fi
  local t1=$((SECONDS - start))
  log "2/2 the DinD image: docker build -f plugin-config/dind/Dockerfile FROM $base (node from $nodeimg) -> $image"
  "$docker" build --rm --force-rm -f "$ctx/plugin-config/dind/Dockerfile" --build-arg "BASE_IMAGE=$base" --build-arg "NODE_IMAGE=$nodeimg" \
    --build-arg "LOOM_BUILD=loom-dind-build:$tag" --build-arg "LOOM_SOURCE=${LOOM_DIND_SOURCE:-}" \
    ${LOOM_DIND_BUILD_NETWORK:+--network "$LOOM_DIND_BUILD_NETWORK"} -t "$image" "$ctx" >"$ctx/build2.log" 2>&1 || rc=$?
  if [ $rc != 0 ]; then tail -n 40 "$ctx/build2.log" >&2; log "docker build of the DinD image failed"; exit 1; fi
  log "built $image from $base and $nodeimg (loom ${t1}s, total $((SECONDS - start))s)"
}
if [ "$from_registry" = 1 ]; then
  build_from_registry
  exit 0
fi
# shellcheck source=../../test/fresh-machine/rootfs.sh
source "$repo/test/fresh-machine/rootfs.sh"

# What the inner engine and loom need; nothing else (no kmod: modules come from the host).
# ca-certificates: the inner engine pulls from registries over TLS (recommends are not installed).
PACKAGES=docker.io,iptables,nftables,iproute2,busybox-static,ca-certificates

[ "$(id -u)" = 0 ] || { log "run as root (mmdebstrap builds the rootfs as root)"; exit 1; }
node=$(command -v node) || { log "node (>= 20) is missing"; exit 1; }

start=$SECONDS
mkdir -p "$cache"
sweep_builds "$cache"
mirror=$(host_mirror) || { log "no bookworm mirror in the host's apt sources"; exit 1; }
rootfs_tar=""
cached_rootfs "$mirror" "$cache" dind-bookworm "$PACKAGES"
t_rootfs=$((SECONDS - start))

# etcd for `npm run cluster`'s members (scripts/cluster.ts): the binary of Debian's etcd-server
# package (it needs only libc), fetched with `apt-get download` from the host's apt sources and
# cached as $cache/debs/etcd-server_*.deb. Not a package of the rootfs: that keeps the cached rootfs
# the one without it (cached_rootfs deletes tarballs of other package lists).
etcd_deb() {
  local dir=$cache/debs ver f
  ver=$(apt-cache policy etcd-server 2>/dev/null | awk '/Candidate:/ { print $2 }')
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || { log "the host's apt sources have no etcd-server package (apt-get update?)"; return 1; }
  f="$dir/etcd-server_${ver//:/%3a}_$(dpkg --print-architecture).deb"
  if [ ! -s "$f" ]; then
    mkdir -p "$dir"
    log "apt-get download etcd-server ($ver)"
    (cd "$dir" && timeout 300 apt-get download -q -o APT::Sandbox::User=root etcd-server >&2) || { log "apt-get download etcd-server failed"; return 1; }
    [ -s "$f" ] || { log "apt-get download did not write $f"; return 1; }
    find "$dir" -maxdepth 1 -name 'etcd-server_*.deb' ! -path "$f" -delete
  fi
  echo "$f"
}
etcd=$(etcd_deb) || exit 1

work=$(mktemp -d "$cache/build.XXXXXX")
echo $$ >"$work/owner"
trap 'rm -rf --one-file-system "$work"' EXIT
layer=$work/layer
# With LOOM_DIND_SOURCE (what the checkout is: test/helpers/dind.ts, dindSourceKey), the image
# tarball is cached too, as $cache/image-<hash>.tar (with the rootfs, node and etcd): a second build
# of the same checkout (e2e 13, then e2e 14 in one `npm test`) is only the import. Hard links keep
# a tarball this build uses valid when another build sweeps it.
cached_image=""
if [ -n "${LOOM_DIND_SOURCE:-}" ] && [ "${LOOM_DIND_IMPORT:-1}" != 0 ]; then
  cached_image="$cache/image-$(printf '%s\n' "$rootfs_tar" "$LOOM_DIND_SOURCE" "$("$node" --version)" "$etcd" "$(sha256sum "$here/entrypoint.sh" "$0")" | sha256sum | cut -c1-16).tar"
fi
out=$work/image.tar
if [ -n "$cached_image" ] && ln "$cached_image" "$out" 2>/dev/null; then
  log "reusing the cached image tarball $cached_image"
else
  mkdir -p "$layer/usr/local/bin"
  bash "$repo/plugin-config/install.sh" --root "$layer" >&2
  install -m 755 "$node" "$layer/usr/local/bin/node"
  install -m 755 "$here/entrypoint.sh" "$layer/usr/local/bin/loom-dind"
  dpkg-deb -x "$etcd" "$work/etcd"
  install -m 755 "$work/etcd/usr/bin/etcd" "$layer/usr/local/bin/etcd"
  mkdir -p "$layer/var/lib/loom" "$layer/var/lib/docker" "$layer/run/docker/plugins"
  cp "$rootfs_tar" "$out"
  # Appended without the entries the rootfs already has (./usr/, ./usr/local/bin/...): Docker refuses
  # a tar with duplicate paths.
  tar -tf "$rootfs_tar" | sed 's|/$||' | LC_ALL=C sort -u >"$work/base.list"
  (cd "$layer" && find . | LC_ALL=C sort) | LC_ALL=C comm -23 - "$work/base.list" >"$work/layer.list"
  tar -C "$layer" --numeric-owner --owner=0 --group=0 --no-recursion -rf "$out" -T "$work/layer.list"
  log "image rootfs: $(( $(stat -c %s "$out") / 1048576 )) MB"
  if [ -n "$cached_image" ]; then
    { ln -f "$out" "$cached_image.$$" && mv -f "$cached_image.$$" "$cached_image"; } || log "could not cache $cached_image"
    find "$cache" -maxdepth 1 -name 'image-*.tar*' ! -path "$cached_image" -mmin +60 -delete
  fi
fi

if [ "${LOOM_DIND_IMPORT:-1}" = 0 ]; then
  mv "$out" "$cache/image.tar"
  log "wrote $cache/image.tar (rootfs ${t_rootfs}s, total $((SECONDS - start))s)"
  exit 0
fi
# LOOM_DIND_SOURCE: a label naming the source it was built from (npm run cluster compares it).
labels=()
[ -z "${LOOM_DIND_SOURCE:-}" ] || labels=(--change "LABEL org.loom.source=$LOOM_DIND_SOURCE")
timeout 300 "$docker" import "${labels[@]}" \
  "${image_changes[@]}" \
  "$out" "$image" >/dev/null
log "imported $image (rootfs ${t_rootfs}s, total $((SECONDS - start))s)"
