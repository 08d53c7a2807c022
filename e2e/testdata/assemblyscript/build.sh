#!/bin/sh
# Rebuilds add_header.wasm from assembly/index.ts with the pinned
# AssemblyScript compiler and @solo-io/proxy-runtime (package-lock.json).
# Usage: build.sh [output] (default: add_header.wasm here).
set -eu
cd "$(dirname "$0")"
out="${1:-$PWD/add_header.wasm}"
npm ci --no-audit --no-fund --silent
npx asc assembly/index.ts -b "$out" --use abort=abort_proc_exit --optimize
