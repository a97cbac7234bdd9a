#!/usr/bin/env bash
# Verifies the DinD image's registry path (plugin-config/dind/Dockerfile, `npm run dind:build --
# --from-registry`) on a machine without a registry (issue 17): the two public bases are made
# locally instead, then built through the Dockerfile and smoke-checked. Opt-in (not in `npm test`):
#
#   npm run test:dind-registry        (root; Docker 28.5 of test/setup-docker28.sh)
#
#   local/bookworm    test/fresh-machine/rootfs.sh's cached Debian 12 minbase (what debian:bookworm-slim
#                     is; its apt sources are the host's mirror), `docker import`ed  (BASE_IMAGE)
#   local/node20      local/bookworm plus this machine's node 20 and npm at /usr/local (NODE_IMAGE)
#
# on a private Docker 28.5 engine (own data root and sockets; --bridge=none --iptables=false: it
# changes nothing in the host's network; the builds' RUN steps use --network host to reach the apt
# mirror), then runs the image privileged without a network: loomd up, `docker network create -d
# loom` (198.18.0.0/15 only), two inner containers ping each other. Everything goes with the
# engine's directory at the end, also on failure.
#
# LOOM_VERIFY_OFFLINE=1: also builds the offline image (`npm run dind:build`, Debian host) into the
# same engine and checks that both images have the same configuration (entrypoint, command,
# environment, volumes) and the same files of loom under /opt/loom and /usr/local/bin.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${LOOM_DOCKER28_PREFIX:-/opt/loom-test/docker28}
log() { echo "dind-registry: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root"; exit 1; }
[ -x "$prefix/usr/sbin/dockerd" ] || { log "no Docker 28.5 in $prefix: bash test/setup-docker28.sh"; exit 1; }
export PATH="$prefix/usr/bin:$prefix/usr/sbin:$PATH"
# shellcheck source=../fresh-machine/rootfs.sh
source "$repo/test/fresh-machine/rootfs.sh"

start=$SECONDS
dir=$(mktemp -d /tmp/loom-dind-registry.XXXXXX)
sock=$dir/docker.sock
export DOCKER_HOST=unix://$sock
dockerd_pid=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$dockerd_pid" ]; then
    docker ps -aq | xargs -r docker rm -f -v >/dev/null 2>&1
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$dockerd_pid" 2>/dev/null
  fi
  # the engine's mounts (overlay layers, its exec root) go before its directory
  grep -o " $dir/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf --one-file-system "$dir"
  [ $rc = 0 ] && log "passed ($((SECONDS - start)) s)" || log "FAILED ($rc) after $((SECONDS - start)) s"
  exit $rc
}
trap cleanup EXIT

log "starting a private Docker 28.5 engine in $dir"
setpriv --pdeathsig TERM -- dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" -H "unix://$sock" \
  --bridge=none --iptables=false --ip6tables=false --storage-driver overlay2 \
  --add-runtime deb12runc=/usr/sbin/runc --default-runtime deb12runc >"$dir/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 150); do docker version >/dev/null 2>&1 && break; kill -0 "$dockerd_pid" || { tail "$dir/dockerd.log"; exit 1; }; sleep 0.2; done
docker version --format 'engine {{.Server.Version}}' >&2

# ---- the two bases -------------------------------------------------------------------------------
cache=${LOOM_FRESH_CACHE:-/var/cache/loom-fresh}
mirror=$(host_mirror) || { log "no bookworm mirror in the host's apt sources"; exit 1; }
rootfs_tar=""
cached_rootfs "$mirror" "$cache"
docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'CMD ["bash"]' "$rootfs_tar" local/bookworm >/dev/null
node=$(readlink -f "$(command -v node)")
npmdir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
mkdir -p "$dir/node/ctx"
cp "$node" "$dir/node/ctx/node"
cp -a "$npmdir" "$dir/node/ctx/npm"
cat >"$dir/node/ctx/Dockerfile" <<'DF'
FROM local/bookworm
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && node --version && npm --version
DF
DOCKER_BUILDKIT=0 docker build -q -t local/node20 "$dir/node/ctx" >/dev/null
log "bases local/bookworm and local/node20 ($(node --version)) after $((SECONDS - start)) s"

# ---- the image through the Dockerfile ------------------------------------------------------------
t=$SECONDS
BASE_IMAGE=local/bookworm NODE_IMAGE=local/node20 LOOM_NPM_CI=0 LOOM_DIND_BUILD_NETWORK=host \
  LOOM_DIND_IMAGE=loom/dind:registry LOOM_DIND_SOURCE=verify-registry DOCKER=docker \
  bash "$repo/plugin-config/dind/build.sh" --from-registry
log "npm run dind:build -- --from-registry: $((SECONDS - t)) s, image $(docker image inspect -f '{{.Size}}' loom/dind:registry | awk '{ printf "%d MB", $1 / 1048576 }')"
[ "$(docker image inspect -f '{{index .Config.Labels "org.loom.source"}}' loom/dind:registry)" = verify-registry ] || { log "label org.loom.source missing"; exit 1; }
docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Volumes}} {{json .Config.Env}}' loom/dind:registry >&2
[ -z "$(docker images -q --filter label=org.loom.build)" ] || { log "the build stage's image was left behind"; exit 1; }

# ---- smoke check: loomd up, a loom network, two containers ping ----------------------------------
docker run -d --privileged --network none --name dind-reg loom/dind:registry >/dev/null
ok=0
for _ in $(seq 1 300); do
  if docker exec dind-reg docker version >/dev/null 2>&1; then ok=1; break; fi
  [ "$(docker inspect -f '{{.State.Running}}' dind-reg)" = true ] || break
  sleep 0.2
done
[ $ok = 1 ] || { docker logs --tail 40 dind-reg >&2; log "the inner engine did not come up"; exit 1; }
inner() { docker exec dind-reg "$@"; }
inner sh -c 'test -S /run/docker/plugins/loom.sock' || { log "no loom socket"; exit 1; }
# an inner image: the image's own busybox-static
inner sh -c 'set -e; d=$(mktemp -d); mkdir -p $d/bin; cp /bin/busybox $d/bin/; for a in sh ping sleep ip; do ln -s busybox $d/bin/$a; done; tar -C $d -c . | docker import -c "CMD [\"/bin/sh\"]" - local/busybox >/dev/null; rm -rf $d'
inner docker network create -d loom --subnet 198.18.77.0/24 n1 >/dev/null
for c in c1 c2; do inner docker run -d --name "$c" --network n1 local/busybox sleep 1d >/dev/null; done
ip_b=$(inner docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' c2)
inner docker exec c1 ping -c 2 -W 2 "$ip_b" >&2 || { docker logs --tail 40 dind-reg >&2; log "c1 cannot ping c2 ($ip_b)"; exit 1; }
log "smoke check: loomd up, loom network n1, c1 pings c2 ($ip_b)"
# the cluster command's etcd members run the image's /usr/local/bin/etcd
docker run --rm --network none --entrypoint /usr/local/bin/etcd loom/dind:registry --version | head -1 >&2

if [ "${LOOM_VERIFY_OFFLINE:-0}" = 1 ]; then
  t=$SECONDS
  LOOM_DIND_IMAGE=loom/dind:offline DOCKER=docker bash "$repo/plugin-config/dind/build.sh"
  cfg() { docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Env}} {{json .Config.Volumes}}' "$1"; }
  [ "$(cfg loom/dind:offline)" = "$(cfg loom/dind:registry)" ] || { log "the configurations differ: offline $(cfg loom/dind:offline), registry $(cfg loom/dind:registry)"; exit 1; }
  files() { docker run --rm --network none --entrypoint sh "$1" -c 'cd /opt/loom && find dist -type f | sort | md5sum; ls /usr/local/bin | sort | tr "\n" " "'; }
  [ "$(files loom/dind:offline)" = "$(files loom/dind:registry)" ] || { log "loom's files differ: offline $(files loom/dind:offline), registry $(files loom/dind:registry)"; exit 1; }
  log "offline build ($((SECONDS - t)) s): same configuration and the same loom files as the registry build"
fi
