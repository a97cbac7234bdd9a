# loomd as a container image whose filesystem becomes the managed plugin's rootfs
# (plugin-config/build.sh exports it; see docs/install.md). Multi-stage: the build stage
# compiles with dev dependencies, the runtime stage carries node, nft, iptables
# (nf_tables backend), tc, dist/ and production dependencies only.
#
# BASE_IMAGE must provide Node 20 at /usr/local/bin/node, npm and a POSIX shell with tar
# and find. The default is the public Node image (needs a registry and, for the firewall
# tools, Debian's mirror); plugin-config/build.sh passes a base made offline from the
# build machine's files.
#
# Dependencies come from the npm registry (npm ci), unless the context carries
# offline-deps.tar (an installed node_modules, dev dependencies included), which
# plugin-config/build.sh puts there for offline builds.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
# Lets plugin-config/build.sh find and remove this stage's image afterwards.
ARG BUILD_ID=none
LABEL org.loom.build=${BUILD_ID}
WORKDIR /src
# The wildcard makes offline-deps.tar optional.
COPY package.json package-lock.json offline-deps.ta[r] ./
RUN set -e; \
    if [ -f offline-deps.tar ]; then tar -xf offline-deps.tar && rm offline-deps.tar; else npm ci --no-audit --no-fund; fi
COPY tsconfig.json tsconfig.build.json ./
COPY driver ./driver
COPY ipam-driver ./ipam-driver
COPY lib ./lib
# Compile, drop dev dependencies, then everything node never loads at run time: source
# maps, type declarations and TypeScript sources, docs, and the native prebuilds of
# other platforms (level and netlink load node_modules/*/prebuilds/<platform>-<arch>).
RUN set -e; \
    npm run build; \
    npm prune --omit=dev --offline --no-audit --no-fund; \
    find dist -name '*.map' -exec rm -f {} +; \
    plat=$(node -p 'process.platform + "-" + process.arch'); \
    for d in $(find node_modules -type d -name prebuilds); do \
      for p in "$d"/*; do [ "${p##*/}" = "$plat" ] || rm -rf "$p"; done; \
      [ -d "$d/$plat" ] || { echo "no $plat prebuild in $d" >&2; exit 1; }; \
    done; \
    find node_modules \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -iname 'README*' -o -iname 'CHANGELOG*' -o -iname 'HISTORY*' \) -type f -exec rm -f {} +

FROM ${BASE_IMAGE} AS runtime
# The official Node image lacks the firewall tools: install them from Debian (same
# nf_tables backend as the host's iptables). npm, corepack and yarn are build tools.
RUN set -e; \
    if ! command -v nft >/dev/null || ! command -v iptables >/dev/null || ! command -v tc >/dev/null || ! command -v ip >/dev/null || ! command -v nsenter >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends nftables iptables iproute2 util-linux && rm -rf /var/lib/apt/lists/*; \
    fi; \
    rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-v*; \
    mkdir -p /run/docker/plugins /var/lib/loom
WORKDIR /opt/loom
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/driver ./dist/driver
COPY --from=build /src/dist/ipam-driver ./dist/ipam-driver
COPY --from=build /src/dist/lib ./dist/lib
ENTRYPOINT ["/usr/local/bin/node", "--max-semi-space-size=2", "/opt/loom/dist/driver/main.js"]
