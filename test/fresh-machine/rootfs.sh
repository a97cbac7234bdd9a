#!/usr/bin/env bash
# Sourced by run.sh: makes (or reuses from the cache) the fresh-machine root filesystem.
#
# The rootfs is what the official debian:bookworm container image is: Debian's minbase variant
# (no ca-certificates, iproute2, procps, kmod...), empty apt lists, no apt cache, and the image's
# /usr/sbin/policy-rc.d that keeps package installs from starting services (without it, installing
# docker.io would start a dockerd in the shared host network namespace). Nothing loom needs is in it.

# The Debian mirror the host's apt already uses for bookworm (the only one this machine reaches),
# read from the deb822 sources or sources.list.
host_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk 'BEGIN{RS=""; FS="\n"} {
        t=""; u=""; s="";
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) t=$i; if ($i ~ /^URIs:/) u=$i; if ($i ~ /^Suites:/) s=$i
        }
        if (t ~ /(^|[ \t])deb([ \t]|$)/ && s ~ /[ \t]bookworm([ \t]|$)/) { sub(/^URIs:[ \t]*/, "", u); split(u, a, /[ \t]+/); print a[1]; exit }
      }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  return 1
}

# The host's apt settings for that mirror that a machine configured to use it needs too: this
# machine's mirror serves a frozen snapshot whose Release files are past their Valid-Until date.
host_apt_conf() {
  apt-config dump | grep -E '^Acquire::(Check-Valid-Until|Check-Date) ' || true
}

# Bump when cached_rootfs builds a different rootfs (the cached tarballs are then rebuilt).
ROOTFS_RECIPE="mmdebstrap minbase bookworm, policy-rc.d: 1"

# cached_rootfs MIRROR CACHE [NAME [PACKAGES]]: sets rootfs_tar to the cached rootfs tarball
# CACHE/NAME-<hash>.tar (NAME defaults to bookworm), building it first when it is missing; PACKAGES
# (comma-separated, e.g. the DinD image's docker.io,iptables) are installed into it by mmdebstrap.
# Not called in a command substitution: the build is tied to this script's own process (--pdeathsig).
# The name carries a hash of what shapes it: the mirror, the apt settings, ROOTFS_RECIPE and PACKAGES.
#
# Built with mmdebstrap, not debootstrap: the same minbase Debian from the same mirror, but it
# installs through apt (parallel downloads, dpkg's unsafe-io) and writes the tarball directly:
# 95 s cold here against 240 s for debootstrap + tar, and a CI machine always starts cold.
cached_rootfs() {
  local mirror=$1 cache=$2 name=${3:-bookworm} packages=${4:-} key tar tmp opt
  # (without PACKAGES the hash is the one of the plain minbase, so its cache stays valid)
  key=$(printf '%s\n' "$ROOTFS_RECIPE" "$mirror" "$(host_apt_conf)" ${packages:+"$packages, no recommends, no docs"} | sha256sum | cut -c1-12)
  tar="$cache/$name-$key.tar"
  if [ -s "$tar" ]; then
    log "reusing the cached rootfs $tar"
    rootfs_tar=$tar
    return 0
  fi
  command -v mmdebstrap >/dev/null || {
    log "installing mmdebstrap (apt-get)"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends mmdebstrap >&2 ||
      { log "could not install mmdebstrap"; return 1; }
  }
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/build.XXXXXX")
  echo $$ >"$tmp/owner"
  local aptopts=()
  while IFS= read -r opt; do [ -n "$opt" ] && aptopts+=("--aptopt=$opt"); done < <(host_apt_conf)
  # With PACKAGES, an image's rootfs: no recommends (docker.io's pull in git and perl) and no
  # documentation, as in slim images.
  [ -z "$packages" ] || aptopts+=("--include=$packages" '--aptopt=APT::Install-Recommends "false"'
    '--dpkgopt=path-exclude=/usr/share/doc/*' '--dpkgopt=path-exclude=/usr/share/man/*'
    '--dpkgopt=path-exclude=/usr/share/info/*' '--dpkgopt=path-exclude=/usr/share/locale/*')
  log "mmdebstrap --variant=minbase bookworm${packages:+ with $packages} from $mirror (cached as $tar)"
  # In root mode it mounts /proc, /sys and /dev inside the target while it works, and forks apt and
  # dpkg: private mount and PID namespaces keep every such mount and process from outliving it, and
  # --pdeathsig at each hop (then --kill-child) ends it all with this script, even on SIGKILL.
  if ! setpriv --pdeathsig KILL -- timeout --kill-after=30 600 \
      setpriv --pdeathsig KILL -- unshare --mount --pid --fork --kill-child --mount-proc --propagation private -- \
      mmdebstrap --quiet --mode=root --variant=minbase "${aptopts[@]}" \
      bookworm "$tmp/rootfs.tar" "$mirror" >"$tmp/mmdebstrap.log" 2>&1; then
    tail -n 30 "$tmp/mmdebstrap.log" >&2
    rm -rf --one-file-system "$tmp"
    log "mmdebstrap failed (log above)"
    return 1
  fi
  # As in the debian:bookworm image (debuerreotype): package installs start no services. mmdebstrap
  # already leaves empty apt lists and no package cache, like the image.
  mkdir -p "$tmp/extra/usr/sbin"
  printf '#!/bin/sh\n# as in the debian:bookworm container image: package installs start no services\nexit 101\n' >"$tmp/extra/usr/sbin/policy-rc.d"
  chmod 755 "$tmp/extra/usr/sbin/policy-rc.d"
  tar -C "$tmp/extra" --numeric-owner --owner=0 --group=0 -rf "$tmp/rootfs.tar" ./usr/sbin/policy-rc.d
  mv "$tmp/rootfs.tar" "$tar"
  rm -rf --one-file-system "$tmp"
  # Tarballs of other recipes or mirrors are not used any more.
  find "$cache" -maxdepth 1 -name "$name-*.tar" ! -path "$tar" -delete
  rootfs_tar=$tar
}

# Build directories of runs that were killed while building (their owner PID is gone).
sweep_builds() {
  local dir pid
  for dir in "$1"/build.*; do
    [ -d "$dir" ] || continue
    pid=$(cat "$dir/owner" 2>/dev/null || echo 0)
    if [ "$pid" != 0 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
    rm -rf --one-file-system "$dir"
  done
}
