#!/usr/bin/env bash
# Sourced by run.sh: makes (or reuses from the cache) the fresh-machine root filesystem.
#
# The rootfs is what the official debian:bookworm container image is: debootstrap's minbase variant
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

# Prints the path of the cached rootfs tarball, building it first when it is missing.
# The name carries a hash of everything that shapes it (mirror, variant, this file).
cached_rootfs() {
  local mirror=$1 cache=$2 key tar tmp
  key=$(printf '%s\n' "$mirror" minbase "$(host_apt_conf)" "$(cat "${BASH_SOURCE[0]}")" | sha256sum | cut -c1-12)
  tar="$cache/bookworm-$key.tar"
  if [ -s "$tar" ]; then
    log "reusing the cached rootfs $tar"
    echo "$tar"
    return 0
  fi
  command -v debootstrap >/dev/null || {
    log "installing debootstrap (apt-get)"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends debootstrap >&2
  }
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/build.XXXXXX")
  log "debootstrap --variant=minbase bookworm from $mirror into $tmp (cached as $tar)"
  # debootstrap mounts /proc and /sys inside the target while it works: run it in a private mount
  # namespace so that nothing it mounts can outlive it, even if it is killed.
  if ! timeout --kill-after=30 600 unshare --mount --propagation private -- \
      debootstrap --variant=minbase bookworm "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
    tail -n 30 "$tmp/debootstrap.log" >&2
    rm -rf --one-file-system "$tmp"
    log "debootstrap failed (log above)"
    return 1
  fi
  local r=$tmp/rootfs
  # What the official image does (debuerreotype): no service starts, no lists, no cache.
  printf '#!/bin/sh\n# as in the debian:bookworm container image: package installs start no services\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  rm -f "$r/etc/apt/sources.list"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" >"$r/etc/apt/sources.list.d/debian.sources"
  host_apt_conf | sed 's/$/;/' >"$r/etc/apt/apt.conf.d/99mirror-snapshot"
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb
  timeout 300 tar -C "$r" --numeric-owner -cf "$tmp/rootfs.tar" .
  mv "$tmp/rootfs.tar" "$tar"
  rm -rf --one-file-system "$tmp"
  echo "$tar"
}
