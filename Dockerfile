# loomd as a container image whose filesystem becomes the managed plugin's rootfs
# (see plugin-config/). Multi-stage: build with dev dependencies, run with production
# dependencies only. BASE_IMAGE must provide Node 20 (and, for the runtime stage,
# nft and iptables); the default is the public Node image, tests pass a local one.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --ignore-scripts=false
COPY driver ./driver
COPY ipam-driver ./ipam-driver
RUN npm run build && npm prune --omit=dev

FROM ${BASE_IMAGE} AS runtime
ARG INSTALL_FIREWALL_TOOLS=1
RUN if [ "$INSTALL_FIREWALL_TOOLS" = 1 ] && command -v apt-get >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends nftables iptables && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /opt/loom
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN mkdir -p /run/docker/plugins /var/lib/loom
ENTRYPOINT ["node", "/opt/loom/dist/driver/main.js"]
