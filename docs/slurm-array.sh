#!/bin/bash
# Explain a folder of images on a Slurm cluster: one array task per shard, all writing into one shared folder.
#
#   sbatch --array=0-15 docs/slurm-array.sh /shared/model.safetensors /shared/images /shared/maps
#
# Each task explains inputs i, i+n, i+2n, ... of the sorted input list (`--shard auto` reads SLURM_ARRAY_TASK_ID,
# SLURM_ARRAY_TASK_COUNT and SLURM_ARRAY_TASK_MIN), writes its maps with create-new semantics, appends its rows to
# OUT/results.csv under a file lock and writes its own OUT/manifest.RUN.json. `--resume` makes a requeued or rerun
# task skip the images whose outputs are complete, so `sbatch` the same array again after a failure.
#SBATCH --job-name=cam-explain
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=cam-%A_%a.log
set -euo pipefail

model=${1:?usage: sbatch --array=0-N docs/slurm-array.sh MODEL IMAGES OUT [cam options...]}
images=${2:?missing IMAGES (a folder, a glob in quotes, or @LIST for --list LIST)}
out=${3:?missing OUT}
shift 3

# cam: the installed dotnet tool (dotnet tool install --global CamEngine.Tool), or CAM=/path/to/cam.
cam=${CAM:-cam}

if [[ $images == @* ]]; then
    inputs=(--list "${images#@}")
else
    inputs=("$images" --recursive)
fi

exec "$cam" explain "$model" "${inputs[@]}" --shard auto --resume --out "$out" --quiet \
    --method "${CAM_METHOD:-gradcam}" --batch "${CAM_BATCH:-16}" "$@"
