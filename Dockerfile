# The ringmesh image: ringmesh-control, ringmesh-proxy, ringmesh-init and ringmeshctl in /usr/local/bin, one image
# for every binary (the chart runs it as ringmesh/ringmesh:<appVersion>):
#
#   docker build -t ringmesh/ringmesh:0.1.0 .
#
# x86-64 only: the wolfSSL build uses AES-NI and Intel assembly.
#
# No USER is set, on purpose: one image runs as three different users, each set by the pod that runs it.
#   - ringmesh-init, the init container the injector adds, runs as root with NET_ADMIN and NET_RAW only, to write
#     the pod's iptables rules;
#   - ringmesh-proxy, the sidecar, runs as UID/GID 1337 (the injector's runAsUser), the UID ringmesh-init leaves out
#     of capture, with a read-only root filesystem and no capabilities;
#   - ringmesh-control runs as UID 65532 (the chart's securityContext), not root, read-only root filesystem.
# Outside Kubernetes, give the user yourself (docker run --user 1337:1337 ... ringmesh-proxy ...).
#
# tests/k8s/test_dockerfile.sh checks what can be checked without a container engine: the build stage runs the
# bootstrap script CI runs, and the runtime stage installs the packages that provide every shared library the
# binaries load (scripts/runtime-packages.txt).

ARG DEBIAN_RELEASE=bookworm

# ---- build: the same scripts/bootstrap.sh as CI (.ci/run -> scripts/test.sh), in --build-only mode: the build
# packages and the accelerated wolfSSL, without the test tools
FROM debian:${DEBIAN_RELEASE} AS build
WORKDIR /src
# bootstrap first, alone: its layer (packages, wolfSSL) is reused until the scripts change
COPY scripts/ scripts/
RUN bash scripts/bootstrap.sh --build-only /src/build
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGMESH_SYSTEM_WOLFSSL=OFF \
        -DRINGMESH_WOLFSSL_PREFIX=/src/build/deps/wolfssl \
    && cmake --build build -j"$(nproc)" --target ringmesh-control ringmesh-proxy ringmesh-init ringmeshctl \
    && mkdir -p /out \
    && for bin in control/ringmesh-control sidecar/ringmesh-proxy sidecar/ringmesh-init ctl/ringmeshctl; do \
           strip --strip-debug -o "/out/${bin##*/}" "build/$bin"; \
       done

# ---- runtime: Debian slim with the packages of scripts/runtime-packages.txt and the four binaries
FROM debian:${DEBIAN_RELEASE}-slim
COPY scripts/runtime-packages.txt /usr/share/ringmesh/runtime-packages.txt
RUN apt-get update \
    && sed -e 's/#.*//' /usr/share/ringmesh/runtime-packages.txt \
       | xargs env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ringmesh-control /out/ringmesh-proxy /out/ringmesh-init /out/ringmeshctl /usr/local/bin/
EXPOSE 15001 15006 15012 15014 15017 15021
CMD ["/usr/local/bin/ringmeshctl"]
