#!/usr/bin/env bash
# Installs Docker 28.5.x (dockerd, docker CLI, docker-proxy, docker-init) and containerd 2.1 from Debian
# sid into a private prefix, without touching the system's apt/dpkg state (temporary apt config + dpkg -x).
#   PREFIX=${LOOM_DOCKER28_PREFIX:-/opt/loom-test/docker28}; idempotent (quick exit when already installed).
#   test/setup-docker28.sh --verify   additionally starts a throwaway engine in a private netns and runs
#                                     `docker run --rm local/busybox echo ok` with the 28 CLI.
# Running the engine: PATH=$PREFIX/usr/bin:$PREFIX/usr/sbin:$PATH (dockerd finds containerd, the shim,
# docker-proxy and docker-init there) and `--add-runtime deb12runc=/usr/sbin/runc --default-runtime deb12runc`
# (sid's runc needs a newer glibc than Debian 12 has; Debian 12's runc comes with test/setup-host.sh).
set -euo pipefail
PREFIX=${LOOM_DOCKER28_PREFIX:-/opt/loom-test/docker28}
PKGS=(docker.io docker-cli containerd tini-static)   # docker-init -> tini-static (symlink in docker.io)
BINS=(usr/sbin/dockerd usr/sbin/docker-proxy usr/bin/docker usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/docker-init)
log() { echo "setup-docker28: $*" >&2; }
installed() { [ -x "$PREFIX/usr/sbin/dockerd" ] && "$PREFIX/usr/sbin/dockerd" --version 2>/dev/null | grep -q 'version 28\.'; }

install() {
  installed && { log "ok ($("$PREFIX/usr/sbin/dockerd" --version))"; return 0; }
  mkdir -p "$(dirname "$PREFIX")"
  exec 9>"$PREFIX.lock"; flock 9                      # serialise concurrent installs
  installed && return 0
  local t; t=$(mktemp -d /tmp/loom-d28-apt.XXXXXX)
  trap 'rm -rf "$t" "$PREFIX.new.$$"' EXIT
  # Mirror: first non-security URI of the machine's own apt sources (deb822 *.sources or one-line *.list).
  local mirror=${LOOM_DEBIAN_MIRROR:-}
  [ -n "$mirror" ] || mirror=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for(i=2;i<=NF;i++)print $i}';
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed 's/\[[^]]*\]//' | awk '{print $2}'; } |
    grep -v security | head -n1 || true)
  [ -n "$mirror" ] || { log "no Debian mirror found in /etc/apt sources"; exit 1; }
  local kr=/usr/share/keyrings/debian-archive-keyring.gpg opt=""
  [ -f "$kr" ] && opt="[signed-by=$kr] "
  mkdir -p "$t/lists/partial" "$t/cache/archives/partial" "$t/empty" "$t/debs" "$PREFIX.new.$$"
  echo "deb ${opt}${mirror} sid main" >"$t/sources.list"
  local O=(-q -o "Dir::Etc::SourceList=$t/sources.list" -o "Dir::Etc::SourceParts=$t/empty"
           -o "Dir::State::Lists=$t/lists" -o "Dir::Cache=$t/cache" -o APT::Sandbox::User=root)
  log "fetching ${PKGS[*]} from $mirror sid"
  apt-get "${O[@]}" update >/dev/null
  (cd "$t/debs" && apt-get "${O[@]}" download "${PKGS[@]}" >/dev/null)
  for d in "$t"/debs/*.deb; do log "  $(basename "$d")"; dpkg -x "$d" "$PREFIX.new.$$"; done
  # Every binary dockerd needs must be present and link against this host's (Debian 12) libraries.
  for b in "${BINS[@]}"; do
    [ -x "$PREFIX.new.$$/$b" ] || { log "missing $b"; exit 1; }
    if ldd "$PREFIX.new.$$/$b" 2>&1 | grep -q 'not found'; then ldd "$PREFIX.new.$$/$b" >&2; log "$b: unmet libs"; exit 1; fi
  done
  rm -rf "$PREFIX"; mv "$PREFIX.new.$$" "$PREFIX"
  [ -x /usr/sbin/runc ] || log "warning: /usr/sbin/runc (Debian 12 runc) is missing; run test/setup-host.sh"
  rm -rf "$t"; trap - EXIT
  log "installed $("$PREFIX/usr/sbin/dockerd" --version) into $PREFIX"
}

# --verify: private engine in netns loomt-d28probe with its own mount ns (sysfs of the netns, host cgroups).
# State is global: the EXIT trap runs after verify() has returned.
ns=loomt-d28probe; D=""; pid=""; dk=(); made=()
verify() {
  local i
  D=$(mktemp -d /tmp/loom-d28probe.XXXXXX)
  dk=("$PREFIX/usr/bin/docker" -H "unix://$D/docker.sock")
  cleanup() {
    set +e
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      "${dk[@]}" ps -aq 2>/dev/null | xargs -r "${dk[@]}" rm -f >/dev/null 2>&1
      kill "$pid"; for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    # Leftovers (shims/containerd) are recognised by our unique temp dir in their command line.
    for p in $(grep -lsF "$D/" /proc/[0-9]*/cmdline | cut -d/ -f3); do kill -9 "$p" 2>/dev/null; done
    grep -F " $D/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    ip netns del "$ns" 2>/dev/null; rm -rf "$D"; [ ${#made[@]} -eq 0 ] || rmdir "${made[@]}" 2>/dev/null
  }
  trap cleanup EXIT
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"; ip -n "$ns" link set lo up
  # dockerd/containerd write /run/docker/plugins and /run/containerd/s (shim sockets) at fixed paths:
  # hide them under tmpfs in the private mount ns; remove the mount points afterwards if we made them.
  for i in /run/docker /run/containerd; do [ -d $i ] || { mkdir $i; made+=("$i"); }; done
  PATH="$PREFIX/usr/bin:$PREFIX/usr/sbin:$PATH" nsenter --net="/run/netns/$ns" unshare -m --propagation private \
    sh -c 'mkdir -p "$0/cg" && mount --rbind /sys/fs/cgroup "$0/cg" && mount -t sysfs sysfs /sys &&
           mount --move "$0/cg" /sys/fs/cgroup && mount -t tmpfs tmpfs /run/docker &&
           mount -t tmpfs tmpfs /run/containerd && exec dockerd --data-root "$0/data" --exec-root "$0/exec" \
           -H "unix://$0/docker.sock" --pidfile "$0/docker.pid" \
           --add-runtime deb12runc=/usr/sbin/runc --default-runtime deb12runc' "$D" >"$D/dockerd.log" 2>&1 &
  pid=$!
  for i in $(seq 300); do "${dk[@]}" version >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$D/dockerd.log" >&2; log "dockerd exited"; exit 1; }; sleep 0.1; done
  "${dk[@]}" version --format 'client {{.Client.Version}} / server {{.Server.Version}} ({{.Server.Os}}/{{.Server.Arch}})'
  "${dk[@]}" info --format 'runtime={{.DefaultRuntime}} cgroup={{.CgroupDriver}} v{{.CgroupVersion}} storage={{.Driver}}'
  mkdir -p "$D/rootfs/bin"; cp /bin/busybox "$D/rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$D/rootfs/bin/$a"; done
  tar -C "$D/rootfs" -c . | "${dk[@]}" import -c 'CMD ["/bin/sh"]' - local/busybox >/dev/null
  "${dk[@]}" run --rm local/busybox echo ok
  "${dk[@]}" run --rm --init -p 127.0.0.1:18928:80 local/busybox sh -c 'ps -o pid,comm | sed -n 2p; ip -4 -o addr show eth0'
  grep -iE 'level=(error|fatal)' "$D/dockerd.log" >&2 || true
  log "verify ok"
}

install
[ "${1:-}" = --verify ] && verify
exit 0
