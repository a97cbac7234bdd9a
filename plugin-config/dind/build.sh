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
  --change 'ENTRYPOINT ["/usr/local/bin/loom-dind"]' \
  --change 'CMD []' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LOOM_DIND=on' \
  --change 'VOLUME /var/lib/docker' \
  --change 'VOLUME /var/lib/loom' \
  "$out" "$image" >/dev/null
log "imported $image (rootfs ${t_rootfs}s, total $((SECONDS - start))s)"
