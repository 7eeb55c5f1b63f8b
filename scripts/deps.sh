#!/usr/bin/env bash
# Installs the Debian packages joot uses at run time and in its tests. Debian 12 (bookworm).
# qemu-system-x86 in bookworm needs the bookworm qemu-utils: a newer one (from backports) is
# replaced by it, hence --allow-downgrades and the explicit qemu-utils/bookworm.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS=(
  # environments, rootless
  uidmap fuse-overlayfs util-linux passwd iproute2 libcap2-bin busybox-static ca-certificates
  # archives
  zstd xz-utils
  # bootstrap
  mmdebstrap debootstrap dnf rpm createrepo-c
  # disk images and boot
  e2fsprogs xfsprogs fdisk dosfstools mtools grub-pc-bin grub-efi-amd64-bin systemd-boot-efi
  ovmf binutils qemu-system-x86 qemu-utils/bookworm
  # registries
  skopeo docker-registry apache2-utils
  # recipes: configuration management steps
  ansible
  # benchmarks against peers
  hyperfine bubblewrap podman runc
)
$SUDO apt-get update
$SUDO apt-get install -y --allow-downgrades --no-install-recommends "${PKGS[@]}"
