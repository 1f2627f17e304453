#!/usr/bin/env bash
# Sets everything up on a fresh Debian/Ubuntu machine: OS synthesizers and audio libraries,
# then a virtual environment in .venv with the project and its models (all from registries).
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  festival festvox-us-slt-hts flite espeak-ng libportaudio2 libsndfile1 chromium chromium-driver
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: the CPU build. An unpinned torch pulls gigabytes of CUDA packages.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test,ray]"
# torchaudio must not be present: next to torch 2.13 it fails to import and breaks transformers.
if .venv/bin/python -m pip show torchaudio >/dev/null 2>&1; then
  echo "setup: torchaudio is installed in .venv and breaks transformers; remove it (pip uninstall torchaudio)" >&2
  exit 1
fi
# The bundled domains' NLU models train now (about a minute each, with progress), not at the
# first replay; they are cached by content hash, so a rerun of this script skips them.
for domain in home coffee; do
  .venv/bin/assistant nlu train "$domain"
done
echo "setup: done. Try: .venv/bin/assistant replay recordings/home-demo"
