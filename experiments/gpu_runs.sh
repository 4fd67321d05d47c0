#!/usr/bin/env bash
# The long runs behind docs/reproduction.md that a CPU cannot afford, in priority order, on one GPU:
#
#   1. the published likelihoods on dynamically binarized MNIST at the published budget: the
#      LVAE, the 5-layer HVAE and the 1-layer VAE at their recipe (2000 epochs), test ELBO every
#      100 epochs, IWAE-5000 on all 10,000 test images; the VLAE at its own recipe beside them
#      (seed 0 of every model first, then the others);
#   2. the hierarchy at matched fit: intervention matrices of those four runs, and of continuous
#      MNIST's VLAE (60,000 steps, the z1 target) and the HVAE / LVAE with z1 as wide as the
#      VLAE's whole code, 3 seeds each;
#   3. tests/test_cuda.py and the speed suite's CUDA rows.
#
#     MNIST_DIR=/path/to/mnist bash experiments/gpu_runs.sh
#
# QUICK=1 tries every training and evaluation command at a tiny budget (on any device, e.g.
# DEVICE=cpu), skipping the factor reader's training, the CUDA tests and the speed suite.
set -euo pipefail
: "${MNIST_DIR:?set MNIST_DIR to the folder holding the MNIST IDX files}"
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-runs}
SEEDS=${SEEDS:-0,1,2}
if [[ ${QUICK:-0} == 1 ]]; then
    BUDGET=(--epochs 0.02,0.02,0.02,0.02 --eval-every 0.01 --iwae-samples 10 --iwae-points 20)
    STEPS=(--steps 4)
else
    BUDGET=(--epochs 2000,2000,2000,recipe --eval-every 100 --iwae-samples 5000 --iwae-points 10000)
    STEPS=()
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
set -x
python experiments/published_mnist.py --data-dir "$MNIST_DIR" --models lvae,hvae,vae,vlae --seeds "$SEEDS" "${BUDGET[@]}" \
    --device "$DEVICE" --out "$OUT/published-mnist"
python experiments/recipe.py --study mnist-default --data-dir "$MNIST_DIR" --variants vlae-60k,hvae-wide,lvae-wide \
    --seeds "$SEEDS" --device "$DEVICE" --out "$OUT/recipe-mnist-default" "${STEPS[@]}"
if [[ ${QUICK:-0} == 1 ]]; then
    exit 0
fi
python experiments/recipe_table.py "$OUT/published-mnist"
python experiments/recipe_table.py "$OUT/recipe-mnist-default"
python -m pytest -q tests/test_cuda.py
python benchmarks/run.py --device cuda
