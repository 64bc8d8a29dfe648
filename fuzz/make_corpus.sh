#!/usr/bin/env bash
# Regenerates the committed seed corpus fuzz/seeds/TARGET of every fuzz target (or of those
# named): each target, started with PHOTONQA_FUZZ_SEEDS=FOLDER, writes its seeds there from the
# repository's reference data and scenarios (see the `seeds` function of each target) and exits.
#   bash fuzz/make_corpus.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build --dev -s none
for target in "${targets[@]}"; do
  PHOTONQA_FUZZ_SEEDS="$PWD/fuzz/seeds/$target" \
    "fuzz/target/x86_64-unknown-linux-gnu/debug/$target"
done
du -sh fuzz/seeds
