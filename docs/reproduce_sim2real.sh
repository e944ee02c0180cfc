#!/usr/bin/env bash
# Every row of the sim-to-real tables in docs/results.md, three seeds each, then the tables.
# Needs the real datasets (UTD-MHAD, WEDA-FALL, CMU and Bandai-Namco BVH) in $VIMU_DATA_DIR or ../shared/data.
#   bash docs/reproduce_sim2real.sh            (≈ 90 min on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-logs/sim2real}
SEEDS=1,2,3
export WANDB_MODE=${WANDB_MODE:-offline}
run() {  # run ROW [overrides...]: a Hydra multirun over the seeds into $OUT/ROW
  local row=$1; shift
  "$PY" train.py -m seed=$SEEDS callbacks.rich_progress_bar=null hydra.sweep.dir="$OUT/$row" "$@"
}

# UTD-MHAD, train subjects 1,3,5,7 → test subjects 2,4,6,8.
run utd_synthetic experiment=sim2real_utd_mhad
run utd_real experiment=sim2real_utd_mhad data.train_on=real trainer.max_epochs=60 trainer.check_val_every_n_epoch=20
for seed in 1 2 3; do  # fine-tune each synthetic seed on 10 % of the real training trials
  "$PY" train.py experiment=sim2real_utd_mhad seed=$seed data.train_on=real data.calibration_fraction=0.1 \
    model.optimizer.lr=0.0001 trainer.max_epochs=30 trainer.check_val_every_n_epoch=30 callbacks.rich_progress_bar=null \
    init_from="$OUT/utd_synthetic/$((seed - 1))/checkpoints/last.ckpt" hydra.run.dir="$OUT/utd_finetune10/$seed"
done
run utd_real10 experiment=sim2real_utd_mhad data.train_on=real data.calibration_fraction=0.1 trainer.max_epochs=60 \
  trainer.check_val_every_n_epoch=20
# WEDA-FALL, fall vs ADL (one window per trial).
run falls_binary experiment=sim2real_falls
run utd_quantile10 experiment=sim2real_utd_mhad data.quantile_mapping=true data.calibration_fraction=0.1
run falls_multiclass experiment=sim2real_falls label_key=label \
  'classes=[walking,running,stairs,sit_stand,jumping,stumbling,falling]'
run utd_synthetic_all experiment=sim2real_utd_mhad 'train_subjects=[1,2,3,4,5,6,7,8]' 'test_subjects=[1,2,3,4,5,6,7,8]'
# The placement fitted to the training subjects' pairs (docs/fit_utd_mhad.py --subjects 1 3 5 7) fed back.
run utd_fitted experiment=sim2real_utd_mhad data=sim2real_utd_mhad_fitted
run utd_fitted_placement_only experiment=sim2real_utd_mhad data=sim2real_utd_mhad_fitted \
  data.pipeline.sensor.accelerometer.bias_std=0.2 data.pipeline.sensor.accelerometer.scale_error_std=0 \
  data.pipeline.sensor.gyroscope.bias_std=0.02 data.pipeline.sensor.gyroscope.scale_error_std=0

"$PY" docs/sim2real_table.py "synthetic=$OUT/utd_synthetic" "synthetic + fine-tune 10 %=$OUT/utd_finetune10" \
  "synthetic + quantile mapping 10 %=$OUT/utd_quantile10" "real-only 10 %=$OUT/utd_real10" "real-only=$OUT/utd_real" \
  "synthetic, all subjects=$OUT/utd_synthetic_all" "synthetic, fitted placement=$OUT/utd_fitted" \
  "synthetic, fitted placement only=$OUT/utd_fitted_placement_only"
"$PY" docs/sim2real_table.py "fall vs ADL=$OUT/falls_binary" "multi-class (7)=$OUT/falls_multiclass"
