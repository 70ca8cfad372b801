#!/usr/bin/env bash
# The GPU check, for a machine with Python 3.12, jax (CUDA), flax, optax and orbax-checkpoint but none
# of our other dependencies and no network. Run from the repository root:
#
#   # here, with the network: the wheels the GPU machine lacks, for its Python
#   pip download --python-version 3.12 --only-binary=:all: --dest wheels \
#       jraph mne edfio grain array-record tensorboardX scikit-learn matplotlib tqdm tokenizers \
#       fhir.resources PyWavelets sacrebleu rouge-score pytest
#   # there:
#   bash experiments/device_check.sh [wheels] [PEAK_TFLOPS]     # H200: 989 (dense bf16)
#
# It installs the carried wheels (never the network), installs the project without its dependencies,
# runs the test suite, then times the pretraining step of base, large and huge in bf16 (and f32 for
# base), printing tokens/s and MFU against the chip's bf16 peak. Everything it prints goes to
# $OUT/device_check.txt too when OUT is set.
set -uo pipefail
WHEELS="${1:-wheels}"
PEAK="${2:-989}"
LOG="${OUT:-.}/device_check.txt"
exec > >(tee "$LOG") 2>&1

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -c "import jax; print('jax', jax.__version__, jax.devices())"

echo "== dependencies from $WHEELS (no network)"
python -m pip install -q --no-index --find-links "$WHEELS" jraph mne edfio grain array-record tensorboardX \
    scikit-learn matplotlib tqdm tokenizers fhir.resources PyWavelets sacrebleu rouge-score pytest || exit 1
python -m pip install -q --no-deps --no-build-isolation -e . || python -m pip install -q --no-deps -e . || exit 1

echo "== tests"
python -m pytest -q -x -m "not slow" 2>&1 | tail -5

echo "== training step throughput (bf16; MFU against ${PEAK} TFLOP/s)"
python experiments/bench_train.py --preset base --dtypes f32 bf16 --samples 64 --peak-tflops "$PEAK"
python experiments/bench_train.py --preset large --dtypes bf16 --samples 64 --peak-tflops "$PEAK"
python experiments/bench_train.py --preset huge --dtypes bf16 --samples 16 --peak-tflops "$PEAK"
