# The rayward image: one static binary, nothing else. It is what the init container of a
# hardened Ray pod runs (`rayward certs node`), and it runs every other subcommand too.
#
#   docker build -t rayward .
#   docker run --rm rayward --help
#
# The build stage runs scripts/static-build.sh, the same command the test script checks
# outside Docker (static glibc: see that script for why not musl).

FROM docker.io/library/rust:1.95-bookworm AS build
# `file` and `readelf` (binutils) for the script's static-linking check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends file binutils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN CARGO_TARGET_DIR=/src/target bash scripts/static-build.sh \
 && cp /src/target/x86_64-unknown-linux-gnu/release/rayward /rayward

# No shell, no libc, no package manager: only the binary. It reads and writes only the
# folders it is given (the CA Secret mount, an emptyDir for the node certificate).
FROM scratch
COPY --from=build /rayward /rayward
USER 1000:1000
ENTRYPOINT ["/rayward"]
