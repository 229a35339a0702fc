# ringmesh images. Build one target per image (x86-64 only: the wolfSSL build uses AES-NI and Intel assembly):
#   docker build --target proxy   -t ringmesh-proxy .
#   docker build --target init    -t ringmesh-init .
#   docker build --target control -t ringmesh-control .
#   docker build --target ctl     -t ringmeshctl .

FROM debian:bookworm AS builder
WORKDIR /src
COPY . .
# bootstrap installs the build packages and builds the accelerated wolfSSL into build/deps/wolfssl.
RUN bash scripts/bootstrap.sh /src/build \
    && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGMESH_SYSTEM_WOLFSSL=OFF \
    && cmake --build build -j"$(nproc)"
# Collect the binaries that exist, and the Debian packages that provide the shared libraries they load.
RUN set -eu; mkdir -p /out/bin; \
    for bin in sidecar/ringmesh-proxy sidecar/ringmesh-init ctl/ringmeshctl control/ringmesh-control; do \
        if [ -x "build/$bin" ]; then strip --strip-debug -o "/out/bin/${bin##*/}" "build/$bin"; fi; \
    done; \
    ls /out/bin | grep -q .; \
    for bin in /out/bin/*; do ldd "$bin" >>/tmp/ldd.txt; done; \
    for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' /tmp/ldd.txt | sort -u); do \
        owner=$(dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "$(readlink -f "$lib")"); \
        echo "${owner%%:*}" >>/tmp/owners.txt; \
    done; \
    sort -u /tmp/owners.txt >/out/runtime-packages; \
    cat /out/runtime-packages

# Shared base: Debian slim with the libraries the binaries need.
FROM debian:bookworm-slim AS runtime
COPY --from=builder /out/runtime-packages /usr/share/ringmesh/runtime-packages
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates $(cat /usr/share/ringmesh/runtime-packages) \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/bin/ /usr/local/bin/

# Init container: writes the pod's iptables rules; needs root and NET_ADMIN/NET_RAW.
FROM runtime AS init
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables \
    && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/local/bin/ringmesh-init"]

FROM runtime AS control
USER 65532:65532
EXPOSE 15012 15014
ENTRYPOINT ["/usr/local/bin/ringmesh-control"]

FROM runtime AS ctl
ENTRYPOINT ["/usr/local/bin/ringmeshctl"]

# The sidecar runs as UID 1337, which ringmesh-init leaves out of outbound capture. Last, so it is the default target.
FROM runtime AS proxy
USER 1337:1337
EXPOSE 15001 15006 15021
ENTRYPOINT ["/usr/local/bin/ringmesh-proxy"]
