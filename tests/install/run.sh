#!/usr/bin/env bash
# Install the build tree into a temporary prefix, then build and run a consumer
# through find_package(tether) (shared and static) and through pkg-config.
# usage: run.sh <build-dir> <source-dir>
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/tests/install" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
pc=$(dirname "$(find "$tmp/prefix" -name tether.pc | head -n 1)")
libdir=$(dirname "$(find "$tmp/prefix" -name 'libtether.so*' | head -n 1)")
LD_LIBRARY_PATH=$libdir "$tmp/consumer/consumer_shared"
"$tmp/consumer/consumer_static"
# pkg-config: the flags alone must be enough to compile and link.
flags=$(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs tether)
cc -o "$tmp/consumer_pc" "$src/tests/install/consumer.c" $flags
LD_LIBRARY_PATH=$libdir "$tmp/consumer_pc"
# Static linking through pkg-config pulls the private dependencies too.
sflags=$(PKG_CONFIG_PATH=$pc pkg-config --static --cflags --libs tether)
cc -o "$tmp/consumer_pc_static" "$src/tests/install/consumer.c" "$libdir/libtether.a" $sflags
"$tmp/consumer_pc_static"
echo "install test: find_package (shared, static) and pkg-config (shared, static) all ok"
