#!/usr/bin/env bash
# Engine vs PyTorch on the same 2-core machine, back to back, and their ratios (engine / PyTorch; <= 1 means the
# engine is as fast or faster):
#   1. ResNet-18 shape, random weights, batch 1 and 8: forward, forward + backward to layer4 (Grad-CAM), forward +
#      backward to the input (bench/resnet18_torch.py vs the bench tool's `resnet18` mode, same median method);
#   2. ResNet-50 (torchvision resnet50(weights=None), seed 50, exported to ONNX and converted), batch 1 and 8: forward
#      and Grad-CAM (forward + backward to layer4's output) (bench/resnet50_torch.py vs the bench tool's `model` mode);
#      steps 1 and 2 run ROUNDS times (default 3), alternating which side goes first, and print every round and
#      the median of the per-round ratios for each cell;
#   3. whole process, Grad-CAM on 16 images (4 sample images x 4 copies): `cam explain --method gradcam --npy`
#      vs bench/gradcam_torch.py, wall time and peak RSS from /usr/bin/time;
#   4. whole process, Score-CAM on one image: `cam explain --method scorecam` vs `bench/scorecam_torch.py --pgc`
#      (pytorch-grad-cam's steps on torchvision's resnet18), printed as a speed-up (PyTorch time / engine time).
# usage: bench/compare.sh [MODEL]   (default models/resnet18.safetensors; see tools/get-resnet18.sh)
# Other processes on the machine skew both sides: run it on an idle machine, or raise ROUNDS.
#
# bench/compare.sh --ort [--smoke] [NAME ...]: the engine against ONNX Runtime instead (the bench tool's `ort` mode:
#   ORT 1.31 from NuGet, CPU provider, intra-op threads = cores, ORT_ENABLE_ALL), on the same .onnx files: ResNet-18
#   and ResNet-50 (forward, batch 1 and 8; both also Grad-CAM = forward keeping layer4 + reverse to it, against ORT's
#   forward alone; ResNet-18 also Score-CAM at batch 8: the engine's whole method on one image, per mask, against ORT's
#   time per image of a batch-8 forward, 3 alternating calls of 512 masks each), MobileNetV2, EfficientNet-B0,
#   ConvNeXt-T and ViT-B/16 (forward, batch 1 and 8). Models: torchvision,
#   random seeded weights (bench/export_ort_models.py), converted with `cam convert`, made once into $ORT_MODELS
#   (default ~/.cache/camengine/ort-models). Each cell: both outputs checked to agree, 10 warm-up calls of each side,
#   then 30 (batch 1) or 8 (batch 8) calls alternating engine and ORT, each after a 100 ms sleep (ORT_GAP=MS; 0: back
#   to back) so that neither starts while ORT's workers still spin from its last call (they burn tens of ms of CPU
#   after each call returns, printed per cell); medians and engine / ORT (<= 1: the engine is as fast or faster).
#   --smoke: 2 warm-ups and 3 calls, to check the plumbing (its ratios mean nothing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py=/usr/bin/python3

if [[ "${1:-}" == --ort ]]; then
  shift
  smoke=()
  if [[ "${1:-}" == --smoke ]]; then
    smoke=(--smoke)
    shift
  fi
  names=("$@")
  ((${#names[@]})) || names=(resnet18 resnet50 mobilenet_v2 efficientnet_b0 convnext_tiny vit_b_16)
  models="${ORT_MODELS:-$HOME/.cache/camengine/ort-models}"
  mkdir -p "$models"
  dotnet build "$root/bench/CamEngine.Bench" -c Release -v:q -nologo >/dev/null
  dotnet build "$root/tools/Cam" -c Release -v:q -nologo >/dev/null
  bench="$root/bench/CamEngine.Bench/bin/Release/net10.0/CamEngine.Bench.dll"
  cam="$root/tools/Cam/bin/Release/net10.0/cam.dll"
  export DOTNET_TieredCompilation=0
  out="$(mktemp)"
  trap 'rm -f "$out"' EXIT
  for name in "${names[@]}"; do
    if [[ ! -f "$models/$name.onnx" ]]; then
      echo "exporting $name (torchvision, random seeded weights)"
      $py "$root/bench/export_ort_models.py" "$models" "$name"
    fi
    if [[ ! -f "$models/$name.safetensors" || "$models/$name.onnx" -nt "$models/$name.safetensors" ]]; then
      dotnet "$cam" convert "$models/$name.onnx" -o "$models/$name.safetensors" --overwrite >/dev/null
    fi
    layer=()
    [[ $name == resnet50 ]] && layer=(/layer4/layer4.2/relu_2/Relu_output_0)
    # ResNet-18 also: Grad-CAM, and Score-CAM per mask at batch 8 (512 masks; ResNet-50's 2048 would take minutes a call).
    [[ $name == resnet18 ]] && layer=(/layer4/layer4.1/relu_1/Relu_output_0 --scorecam)
    dotnet "$bench" ort "$name" "$models/$name.onnx" "$models/$name.safetensors" "${layer[@]}" --gap "${ORT_GAP:-100}" "${smoke[@]}" | tee -a "$out"
  done
  echo
  echo "engine / ONNX Runtime ($(nproc) cores; median of alternating calls; <= 1: the engine is as fast or faster)"
  # The machine, so a table can be told from one made on another VM (the same VM name has meant different CPUs).
  echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), family $(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -n 1), model $(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -n 1); $(date -u '+%Y-%m-%d %H:%M UTC')"
  printf '%-34s %10s %10s %8s\n' "" "engine ms" "ORT ms" "ratio"
  sed -nE 's/^ort ([a-z0-9_]+) batch ([0-9]+) ([a-z]+): engine ([0-9.]+) ms, ORT ([0-9.]+) ms, engine\/ORT ([0-9.]+)$/\1 \2 \3 \4 \5 \6/p' "$out" |
    while read -r n b what e o r; do
      case $what in
        gradcam) what="Grad-CAM vs ORT forward" ;;
        scorecam) what="Score-CAM/mask vs ORT/image" ;;
        *) what=forward ;;
      esac
      printf '%-34s %10s %10s %8s\n' "$n b$b $what" "$e" "$o" "$r"
    done
  exit 0
fi
model="${1:-$root/models/resnet18.safetensors}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

dotnet build "$root/bench/CamEngine.Bench" -c Release -v:q -nologo >/dev/null
dotnet build "$root/tools/Cam" -c Release -v:q -nologo >/dev/null

bench="$root/bench/CamEngine.Bench/bin/Release/net10.0/CamEngine.Bench.dll"
export DOTNET_TieredCompilation=0 # as `cam` runs (tools/Cam sets it): optimized code from the first call
rounds="${ROUNDS:-3}"
$py "$root/bench/resnet50_torch.py" export "$work" >/dev/null
dotnet "$root/tools/Cam/bin/Release/net10.0/cam.dll" convert "$work/resnet50.onnx" -o "$work/resnet50.safetensors" >/dev/null

# Rounds alternate which side runs first; each prints its medians, and the summary takes the median ratio per cell.
for ((r = 1; r <= rounds; r++)); do
  for side in $( ((r % 2)) && echo "engine pytorch" || echo "pytorch engine"); do
    if [[ $side == engine ]]; then
      dotnet "$bench" resnet18 cpu | grep '^batch' | sed "s/^/round $r engine r18 /" >> "$work/rounds.txt"
      dotnet "$bench" model "$work/resnet50.safetensors" /layer4/layer4.2/relu_2/Relu_output_0 cpu | grep '^batch' \
        | sed "s/^/round $r engine r50 /" >> "$work/rounds.txt"
    else
      $py "$root/bench/resnet18_torch.py" | grep '^batch' | sed "s/^/round $r pytorch r18 /" >> "$work/rounds.txt"
      $py "$root/bench/resnet50_torch.py" | grep '^batch' | sed "s/^/round $r pytorch r50 /" >> "$work/rounds.txt"
    fi
  done
done
cat "$work/rounds.txt"
$py - "$work/rounds.txt" <<'PY'
import re, statistics, sys
cells = {}  # (model, batch, column) -> {round: {side: ms}}
for line in open(sys.argv[1]):
    m = re.match(r"round (\d+) (\w+) (r18|r50) batch (\d+): (.*)", line)
    if not m:
        continue
    rnd, side, model, batch, rest = m.groups()
    for name, ms in re.findall(r"([A-Za-z+\-() 0-9]+?) ([\d.]+) ms", rest):
        name = name.strip(", ")
        cells.setdefault((model, int(batch), name), {}).setdefault(int(rnd), {})[side] = float(ms)
print(f"{'':52} {'engine ms':>10} {'pytorch ms':>10} {'ratio':>6}   per-round ratios (engine / PyTorch)")
for (model, batch, name), by_round in cells.items():
    ratios = [v["engine"] / v["pytorch"] for v in by_round.values() if len(v) == 2]
    e = statistics.median(v["engine"] for v in by_round.values())
    p = statistics.median(v["pytorch"] for v in by_round.values())
    label = f"{'ResNet-18' if model == 'r18' else 'ResNet-50'} b{batch} {name}"
    print(f"{label[:52]:52} {e:10.1f} {p:10.1f} {statistics.median(ratios):6.2f}   " + " ".join(f"{x:.2f}" for x in ratios))
PY
rm -f "$work/resnet50.onnx" "$work/resnet50.safetensors"

echo "== whole process: Grad-CAM on 16 images"
mkdir -p "$work/in"
i=0
for rep in 1 2 3 4; do
  for f in "$root"/models/images/*; do
    i=$((i + 1)); ext="${f##*.}"; cp "$f" "$work/in/img$i.$ext"
  done
done
imgs=("$work"/in/*)
if [[ -f "$model" ]]; then
  /usr/bin/time -f "%e %M" -o "$work/ours.time" dotnet "$root/tools/Cam/bin/Release/net10.0/cam.dll" explain "$model" \
    "${imgs[@]}" --method gradcam --device cpu --npy --quiet --out "$work/ours" >/dev/null
else
  echo "(no $model: run tools/get-resnet18.sh; skipping the engine's whole-process run)"
  echo "0 0" > "$work/ours.time"
fi
/usr/bin/time -f "%e %M" -o "$work/torch.time" $py "$root/bench/gradcam_torch.py" "$work/torch" "${imgs[@]}"
read -r os om < "$work/ours.time"
read -r ts tm < "$work/torch.time"
$py -c "
os_, om, ts, tm = float('$os'), int('$om'), float('$ts'), int('$tm')
print(f'engine {os_:.2f} s (peak RSS {om/1024:.0f} MB), pytorch {ts:.2f} s (peak RSS {tm/1024:.0f} MB), ratio {os_/ts:.2f}')
"

echo "== whole process: Score-CAM on one image (512 masked forwards in batches of 32)"
if [[ -f "$model" ]]; then
  /usr/bin/time -f "%e %M" -o "$work/ours_sc.time" dotnet "$root/tools/Cam/bin/Release/net10.0/cam.dll" explain "$model" \
    "$root/models/images/chelsea.png" --method scorecam --device cpu --npy --quiet --out "$work/ours_sc" >/dev/null
  /usr/bin/time -f "%e %M" -o "$work/torch_sc.time" $py "$root/bench/scorecam_torch.py" --pgc >/dev/null
  read -r os om < "$work/ours_sc.time"
  read -r ts tm < "$work/torch_sc.time"
  $py -c "
os_, om, ts, tm = float('$os'), int('$om'), float('$ts'), int('$tm')
print(f'engine {os_:.2f} s (peak RSS {om/1024:.0f} MB), pytorch-grad-cam-style script {ts:.2f} s (peak RSS {tm/1024:.0f} MB): '
      f'{ts/os_:.2f}x faster; against the 28 s the issue measured for pytorch-grad-cam: {28/os_:.2f}x')
"
else
  echo "(no $model: skipping Score-CAM)"
fi
