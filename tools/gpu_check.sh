#!/usr/bin/env bash
# The GPU checks, in one call that ends by itself within DEADLINE seconds (default 560), leaving
# everything under $OUT (results.tgz holds the run folders' reports, timings and logs):
#   1. c3seg bench train --config voc --json: VGG16-LargeFOV and DeepLabV3-ResNet50, model-only vs
#      the real loop, fp32/bf16 x channels_last, inference at 500x375
#   2. c3seg bench pipeline --config voc: every stage of the VOC config on 600 + 80 generated
#      images of 432 px, 2 epochs a network, timed and extrapolated to 10,582 + 1,449
#   3. c3seg demo on benchmark seeds 1, 2, 3 (headline draws: no choice is made on them), three at
#      a time on the one GPU, then their summary
# Run from the repository root:  OUT=/tmp/gpu tools/gpu_check.sh
# Rehearsal on a CPU (tiny sizes, same steps):  SCALE=small OUT=/tmp/gpu tools/gpu_check.sh
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-/tmp/gpu-check}
PY=${PY:-python3}
WORK=${WORK:-/tmp/gpu-work}
DEADLINE=${DEADLINE:-560}
START=$SECONDS
mkdir -p "$OUT" "$WORK/demo"
left() { echo $((DEADLINE - (SECONDS - START))); }

if [ "${SCALE:-full}" = small ]; then
  TRAIN=(--config tiny --steps 3)
  PIPE=(--config tiny --train 16 --val 6 --size 64 --epochs 2)
  DEMO=(--quick)
  B1=120 B2=240
else
  TRAIN=(--config voc --backbones vgg16-largefov,deeplabv3-resnet50 --workers 14 --steps 20)
  # pydensecrf2 is not on the lent machine: the fast CRF for the pnet+crf row
  PIPE=(--config voc --train 600 --val 80 --size 432 --epochs 2 data.workers=14 labels.workers=14 evaluate.crf=fast)
  DEMO=()
  B1=110 B2=230
fi

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; $PY -c "import torch; print(torch.__version__)"; } >"$OUT/machine.txt" 2>&1
echo "== bench train ($(left) s left)"
timeout "$B1" $PY -m c3seg.cli bench train "${TRAIN[@]}" --json >"$OUT/bench-train.txt" 2>&1
echo "rc=$?" >>"$OUT/bench-train.txt"; tail -12 "$OUT/bench-train.txt"
echo "== bench pipeline ($(left) s left)"
timeout "$B2" $PY -m c3seg.cli bench pipeline "${PIPE[@]}" --out "$WORK/bp" --json >"$OUT/bench-pipeline.txt" 2>&1
echo "rc=$?" >>"$OUT/bench-pipeline.txt"; tail -16 "$OUT/bench-pipeline.txt"
echo "== demos, seeds 1-3 at once ($(left) s left)"
for k in 1 2 3; do
  t=$(( $(left) - 25 )); [ "$t" -gt 30 ] || t=30
  timeout "$t" $PY -m c3seg.cli demo "${DEMO[@]}" --out "$WORK/demo/seed-$k" \
    "data.bench_seed=$k" "seed=$k" labels.workers=4 >"$WORK/demo/log-$k.txt" 2>&1 &
done
wait
timeout 20 $PY -m c3seg.cli demo "${DEMO[@]}" --seeds 1,2,3 --out "$WORK/demo" >"$OUT/demo-summary.txt" 2>&1
tail -30 "$OUT/demo-summary.txt"
(cd "$WORK" && tar czf "$OUT/results.tgz" --ignore-failed-read \
  bp/run/timings.json bp/run/report.md bp/run/run.log \
  demo/log-* demo/summary.md demo/summary.json \
  demo/seed-*/report.json demo/seed-*/report.md demo/seed-*/timings.json demo/seed-*/run.log \
  demo/seed-*/*/log.jsonl demo/seed-*/*/*/log.jsonl 2>/dev/null)
echo "done in $((SECONDS - START)) s"
