#!/usr/bin/env bash
# Brings a Debian/Ubuntu host (or the Vagrant VM, or CI) to what peapod needs:
# Debian packages, node dependencies, the native helpers, the test images, and
# the node settings a kubelet host has. Idempotent: run it as often as you like.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "provision: run as root (sudo $0)" >&2
  exit 1
fi

# Debian packages: build tools for native/, seccomp, CNI plugins, and the
# real peers the tests use (an OCI registry, skopeo/umoci, busybox for images).
packages=(gcc make libc6-dev libseccomp-dev iproute2 iptables util-linux
  containernetworking-plugins busybox docker-registry skopeo umoci jq)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "provision: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null; then
  echo "provision: installing nodejs and npm from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

# A kubelet host has shared mount propagation on / (systemd does it at boot);
# Bidirectional and HostToContainer mounts need it.
if [ "$(findmnt -no PROPAGATION / 2>/dev/null)" != "shared" ]; then
  echo "provision: making / rshared (as systemd does on a real node)"
  mount --make-rshared /
fi

# Node dependencies (bun and deno come from npm as dev dependencies).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

npm run -s build
if [ -f images/build.mjs ]; then
  node images/build.mjs
fi

# crictl talks to peapod by default.
if [ ! -f /etc/crictl.yaml ] || grep -q peapod /etc/crictl.yaml; then
  printf 'runtime-endpoint: unix:///run/peapod/peapod.sock\nimage-endpoint: unix:///run/peapod/peapod.sock\ntimeout: 30\n' >/etc/crictl.yaml
fi
echo "provision: done"
