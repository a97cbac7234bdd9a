#!/usr/bin/env bash
# enter.sh ROOTFS COMMAND: runs COMMAND as root inside ROOTFS the way a privileged container
# runtime (docker run --privileged) would. run.sh starts it under
#   unshare --mount --pid --uts --ipc --fork --kill-child --propagation private
# so this script is PID 1 of a new PID namespace, in a private mount namespace: everything mounted
# here lives only in that namespace and goes with its last process (also when the run is killed).
# The network namespace stays the host's: apt and npm inside must reach the mirror and the
# registry, and giving the container its own namespace would need NAT rules in the host's
# firewall, which this shared machine must not get. The quick start makes its own throwaway
# namespaces for its private engine (policy-rc.d in the rootfs keeps package installs from starting
# a dockerd here).
#
# Why unshare + pivot_root and not systemd-nspawn: nspawn wants systemd's cgroup layout and
# registers with machined/journald when it can; these machines run no systemd, and unshare and
# pivot_root (util-linux, already here) give exactly the namespaces and mounts listed below.
set -euo pipefail
root=$1
shift

mount --make-rprivate /
# pivot_root (which runc also uses for the containers the quick start runs) needs the new root to
# be a mount point.
mount --bind "$root" "$root"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs "$root/sys"
# cgroups as the host has them (a runtime mounts the host's layout for a privileged container):
# a pure cgroup2 host gets a cgroup2 mount; a v1/hybrid host (like these machines) its hierarchies.
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
  mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup"
else
  mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
fi
# /dev: a tmpfs with the usual nodes, its own devpts, shm and mqueue (as Docker makes it; a
# privileged container also sees /dev/net/tun, /dev/kmsg, /dev/loop*).
mount -t tmpfs -o nosuid,mode=755,size=65536k tmpfs "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/zero" c 1 5
mknod -m 666 "$root/dev/full" c 1 7
mknod -m 666 "$root/dev/random" c 1 8
mknod -m 666 "$root/dev/urandom" c 1 9
mknod -m 666 "$root/dev/tty" c 5 0
mknod -m 644 "$root/dev/kmsg" c 1 11
mkdir -p "$root/dev/net" "$root/dev/pts" "$root/dev/shm" "$root/dev/mqueue"
mknod -m 666 "$root/dev/net/tun" c 10 200
mknod -m 660 "$root/dev/loop-control" c 10 237
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777,size=65536k shm "$root/dev/shm"
mount -t mqueue mqueue "$root/dev/mqueue"
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs "$root/run"
mkdir -p "$root/run/lock"
hostname loom-fresh

cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot

# A clean environment, as `docker run` gives one; bash stays PID 1 and reaps orphans.
exec /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root TERM=dumb LANG=C.UTF-8 /bin/bash -c "$*"
