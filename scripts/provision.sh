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

# Debian packages: build tools for native/ (musl for small static helpers),
# seccomp, CNI plugins, and the
# real peers the tests use (an OCI registry, skopeo/umoci, busybox for images).
packages=(gcc make libc6-dev libseccomp-dev musl-tools iproute2 iptables util-linux file
  containernetworking-plugins busybox docker-registry skopeo umoci jq
  ruby systemd)  # the last two check the Vagrantfile and the unit file in the tests
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
# Debian 12 ships Node 18; peapod needs 20 or later. The npm registry's "node"
# package carries the official binaries.
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "provision: Node $(node --version) is too old; installing Node 20 from the npm registry"
  npm install -g --no-audit --no-fund --loglevel=error node@20
  hash -r
fi

# A kubelet host has shared mount propagation on / (systemd does it at boot);
# Bidirectional and HostToContainer mounts need it.
if [ "$(findmnt -no PROPAGATION / 2>/dev/null)" != "shared" ]; then
  echo "provision: making / rshared (as systemd does on a real node)"
  mount --make-rshared /
fi

# Moving a process into a cgroup waits for an RCU grace period (~10 ms per
# container start) unless a cgroup2 mount has favordynmods (Linux 6.0+).
for mp in $(findmnt -rn -t cgroup2 -o TARGET); do
  if ! findmnt -rn -o OPTIONS "$mp" | grep -qw favordynmods; then
    echo "provision: remounting $mp with favordynmods (faster moves into cgroups)"
    mount -o remount,favordynmods "$mp" || echo "provision: warning: this kernel does not take favordynmods" >&2
  fi
done

# Node dependencies (bun and deno come from npm as dev dependencies).
# `npm install` rather than `npm ci`: with omit-lockfile-registry-resolved
# (set on some hosts) npm leaves other platforms' optional packages out of the
# lock file, and `npm ci` then refuses it as out of sync.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund --loglevel=error
fi

npm run -s build
if [ -f images/build.mjs ]; then
  node images/build.mjs
fi

# Pod networking (CNI): install the example network (bridge peapod0 with
# host-local IPAM on 10.88.0.0/16, portmap for hostPorts) when the node has no
# CNI config yet; never touch an existing one. Pods need IP forwarding, and a
# hostPort on 127.0.0.1 needs route_localnet=1 (DNAT'd loopback traffic may
# then leave lo) plus a masquerade rule giving it a source the pod can answer.
mkdir -p /etc/cni/net.d
if ! compgen -G '/etc/cni/net.d/*.conflist' >/dev/null && ! compgen -G '/etc/cni/net.d/*.conf' >/dev/null &&
  ! compgen -G '/etc/cni/net.d/*.json' >/dev/null; then
  echo "provision: installing the example CNI network /etc/cni/net.d/10-peapod.conflist"
  install -m 0644 examples/cni/10-peapod.conflist /etc/cni/net.d/10-peapod.conflist
fi
printf 'net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.route_localnet = 1\n' >/etc/sysctl.d/90-peapod.conf
sysctl -q -w net.ipv4.ip_forward=1 net.ipv4.conf.all.route_localnet=1
localhost_masq=(POSTROUTING -s 127.0.0.0/8 ! -d 127.0.0.0/8 -m comment --comment "peapod: hostPort on 127.0.0.1" -j MASQUERADE)
iptables -t nat -C "${localhost_masq[@]}" 2>/dev/null || iptables -t nat -A "${localhost_masq[@]}"

# crictl talks to peapod by default.
if [ ! -f /etc/crictl.yaml ] || grep -q peapod /etc/crictl.yaml; then
  printf 'runtime-endpoint: unix:///run/peapod/peapod.sock\nimage-endpoint: unix:///run/peapod/peapod.sock\ntimeout: 30\n' >/etc/crictl.yaml
fi

# crictl: fetched from the cri-tools releases only when asked (PEAPOD_FETCH_CRICTL=1,
# as the Vagrantfile does); a failure here is a warning, never an error.
if ! command -v crictl >/dev/null && [ "${PEAPOD_FETCH_CRICTL:-}" = 1 ]; then
  crictl_version=${PEAPOD_CRICTL_VERSION:-v1.31.1}
  crictl_tgz="crictl-${crictl_version}-linux-$(dpkg --print-architecture).tar.gz"
  crictl_url="https://github.com/kubernetes-sigs/cri-tools/releases/download/${crictl_version}/${crictl_tgz}"
  crictl_tmp=$(mktemp -d)
  command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates >/dev/null || true
  echo "provision: fetching ${crictl_url}"
  if (cd "$crictl_tmp" && curl -fsSLo "$crictl_tgz" "$crictl_url" && curl -fsSLo "$crictl_tgz.sha256" "$crictl_url.sha256" &&
    echo "$(cut -d' ' -f1 "$crictl_tgz.sha256")  $crictl_tgz" | sha256sum -c --quiet - && tar -xzf "$crictl_tgz" -C /usr/local/bin crictl); then
    echo "provision: installed /usr/local/bin/crictl ${crictl_version}"
  else
    echo "provision: warning: could not fetch crictl; install it from ${crictl_url%/*}" >&2
  fi
  rm -rf "$crictl_tmp"
fi

# The systemd unit, where systemd is PID 1, with a drop-in that runs this
# checkout: installed and enabled (it runs from the next boot on). Started now
# only when asked (PEAPOD_ENABLE_SERVICE=1, as the Vagrantfile does), since
# the README's `npm start` runs the server on the same socket.
if [ -d /run/systemd/system ]; then
  install -D -m 0644 packaging/peapod.service /etc/systemd/system/peapod.service
  mkdir -p /etc/systemd/system/peapod.service.d
  printf '[Service]\nExecStart=\nExecStart=%s %s/dist/cli.js serve\n' "$(command -v node)" "$PWD" \
    >/etc/systemd/system/peapod.service.d/10-checkout.conf
  systemctl daemon-reload
  systemctl enable peapod.service
  if [ "${PEAPOD_ENABLE_SERVICE:-}" = 1 ]; then
    systemctl start peapod.service
  else
    echo "provision: peapod.service is enabled (not started now: npm start runs the server in this session)"
  fi
else
  echo "provision: systemd is not PID 1 here: start the server directly (npm start, as the README says)"
fi
echo "provision: done"
