#!/usr/bin/env bash
# One-time setup on a fresh machine: the default dataset (Debian package) and a virtualenv with linksim.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# standard registry torch build (the CPU-only wheel cannot load the registry's torchvision)
.venv/bin/python -m pip install -q -e ".[dev,fastldpc,ray]"
