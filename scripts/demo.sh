#!/usr/bin/env bash
# The main job on real data: Debian's Fashion-MNIST (70,000 images) becomes a
# PNG tree, is packed into shards, summarised, verified, and read back; then
# the PNG folder itself becomes a dataset in place, split and mixed into views.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BIN=${SHARDSET_BUILD_DIR:-build}
DEMO=${SHARDSET_DEMO_DIR:-demo-data}
mkdir -p "$DEMO"
export PATH="$PWD/$BIN:$PATH"

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

if [ ! -f "$DEMO/fashion-mnist/testing/9/9999.png" ]; then
  step "1. Fashion-MNIST from Debian's package -> a PNG tree (one file per image)" \
       "fashion_mnist_png $DEMO/fashion-mnist"
  fashion_mnist_png "$DEMO/fashion-mnist"
else
  step "1. Fashion-MNIST PNG tree (already made)" "ls $DEMO/fashion-mnist"
fi
echo "$(find "$DEMO/fashion-mnist" -name '*.png' | wc -l) PNG files, $(du -sh --apparent-size "$DEMO/fashion-mnist" | cut -f1) of file bytes"

step "2. Pack the training set; each PNG's folder name becomes its label (field cls)" \
     "shardset pack $DEMO/fashion-mnist/training -o $DEMO/fmnist-train --label-from-dir --shard-size 16MiB --jobs 2"
rm -rf "$DEMO/fmnist-train"
shardset pack "$DEMO/fashion-mnist/training" -o "$DEMO/fmnist-train" --label-from-dir \
  --shard-size 16MiB --jobs 2
ls -l "$DEMO/fmnist-train"

step "3. What is in it" "shardset info $DEMO/fmnist-train"
shardset info "$DEMO/fmnist-train"

step "4. Check every checksum (exit code 0 means intact)" "shardset verify $DEMO/fmnist-train"
shardset verify "$DEMO/fmnist-train"

step "5. The first samples, like tar tvf" "shardset ls $DEMO/fmnist-train | head -3"
shardset ls "$DEMO/fmnist-train" | head -3 || true  # head closes the pipe early

KEY=$(shardset ls "$DEMO/fmnist-train" | sed -n '12346p' | cut -f1)
step "6. Read one sample back by key, and by ordinal; compare with the source file" \
     "shardset cat $DEMO/fmnist-train $KEY > $DEMO/sample.png"
shardset cat "$DEMO/fmnist-train" "$KEY" > "$DEMO/sample.png"
file "$DEMO/sample.png"
cmp "$DEMO/sample.png" "$DEMO/fashion-mnist/training/$KEY.png" && echo "key $KEY: identical to fashion-mnist/training/$KEY.png"
shardset cat "$DEMO/fmnist-train" --ordinal 12345 | cmp - "$DEMO/fashion-mnist/training/$KEY.png" \
  && echo "ordinal 12345: the same bytes"
echo "its label: $(shardset cat "$DEMO/fmnist-train" "$KEY" --field cls)"

step "7. The PNG folder itself as a dataset (indexed in place, no copy), split and mixed into views" \
     "shardset dataset create $DEMO/fm --shards $DEMO/fashion-mnist --label-from-dir"
rm -rf "$DEMO/fm" "$DEMO/fm-splits" "$DEMO/sweep"
shardset dataset create "$DEMO/fm" --shards "$DEMO/fashion-mnist" --label-from-dir
shardset split "$DEMO/fm" --ratios train=0.8,val=0.1,test=0.1 --stratify --seed 1 -o "$DEMO/fm-splits"
shardset mix test="$DEMO/fm-splits/test.view" more="$DEMO/fm-splits/train.view" \
  --sweep more=0:1:0.25 --seed 7 -o "$DEMO/sweep"
echo "$(ls "$DEMO/sweep" | wc -l) views, $(du -cb "$DEMO"/sweep/*.view | tail -1 | cut -f1) bytes in all"

step "8. A view reads like a dataset" "shardset info $DEMO/sweep/test-all+more-0.25.view"
shardset info "$DEMO/sweep/test-all+more-0.25.view" | grep -v '^  [0-9] '

step "9. Seed 001: a label-ordered tar.gz, shuffled in one step (was: divide by label + merge)" \
     "shardset shuffle $DEMO/training.tar.gz -o $DEMO/training-shuffled.tar.gz --seed 1"
rm -f "$DEMO"/training*.tar.gz "$DEMO"/training*.tar.gz.idx
tar czf "$DEMO/training.tar.gz" -C "$DEMO/fashion-mnist" training
shardset info --order "$DEMO/training.tar.gz" -q | tail -1
shardset shuffle "$DEMO/training.tar.gz" -o "$DEMO/training-shuffled.tar.gz" --seed 1
echo "$(tar tvf "$DEMO/training-shuffled.tar.gz" | grep -c 'png$') PNGs in it; gzip -t: $(gzip -t "$DEMO/training-shuffled.tar.gz" && echo ok)"
shardset info --order "$DEMO/training-shuffled.tar.gz" -q | tail -1
shardset shuffle "$DEMO/training.tar.gz" -o "$DEMO/training-interleaved.tar.gz" --interleave-by label --seed 1
tar tf "$DEMO/training-interleaved.tar.gz" | head -5 || true  # head closes the pipe early
shardset info --order "$DEMO/training-interleaved.tar.gz" -q | tail -1

step "10. Python: pip install . into .venv, read the shards, one shuffled epoch through shardset.torch" \
     "bash scripts/python-env.sh; .venv/bin/python -c 'import shardset; ...'"
bash scripts/python-env.sh
"${SHARDSET_VENV:-.venv}/bin/python" - "$DEMO/fmnist-train" <<'PY'
import sys, time
import shardset
from shardset.torch import DataLoader, IterableDataset
ds = shardset.open(sys.argv[1])
s = ds[12345]
print(f"{len(ds)} samples; ds[12345]: key {s.key}, label {s.text('cls')}, png {len(s['png'])} bytes")
loader = DataLoader(IterableDataset(sys.argv[1], batch_size=256, seed=1, decode="png", label="cls"),
                    num_workers=2)
t0, n = time.monotonic(), 0
for batch in loader:
    n += len(batch["cls"])
print(f"one epoch: {n} decoded images in {time.monotonic() - t0:.2f} s; "
      f"last batch {tuple(batch['png'].shape)}, labels {batch['cls'][:8].tolist()}")
PY

printf '\nDone. The dataset is in %s, views in %s; try: shardset --help\n' "$DEMO/fmnist-train" "$DEMO/sweep"
