#!/usr/bin/env bash
# `make demo`: the main job on the embedded default (SQLite).
set -eu
BIN=.venv/bin
echo "== validating the example flows"
$BIN/ivrflow validate flows/
echo
echo "== the hospital flow as a diagram: var/hospital.svg"
mkdir -p var
$BIN/ivrflow graph flows/hospital.yaml --format svg -o var/hospital.svg
