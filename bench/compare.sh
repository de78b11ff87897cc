#!/usr/bin/env bash
# Engine vs PyTorch on the same 2-core machine, back to back, and their ratios (engine / PyTorch; <= 1 means the
# engine is as fast or faster):
#   1. ResNet-18 shape, random weights, batch 1 and 8: forward, forward + backward to layer4 (Grad-CAM), forward +
#      backward to the input (bench/resnet18_torch.py vs the bench tool's `resnet18` mode, same median method);
#   2. ResNet-50 (torchvision resnet50(weights=None), seed 50, exported to ONNX and converted), batch 1 and 8: forward
#      and Grad-CAM (forward + backward to layer4's output) (bench/resnet50_torch.py vs the bench tool's `model` mode);
#   3. whole process, Grad-CAM on 16 images (4 sample images x 4 copies): `cam explain --method gradcam --npy`
#      vs bench/gradcam_torch.py, wall time and peak RSS from /usr/bin/time;
#   4. whole process, Score-CAM on one image: `cam explain --method scorecam` vs `bench/scorecam_torch.py --pgc`
#      (pytorch-grad-cam's steps on torchvision's resnet18), printed as a speed-up (PyTorch time / engine time).
# usage: bench/compare.sh [MODEL]   (default models/resnet18.safetensors; see tools/get-resnet18.sh)
# Other processes on the machine skew both sides: run it on an idle machine, and more than once.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${1:-$root/models/resnet18.safetensors}"
py=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

dotnet build "$root/bench/CamEngine.Bench" -c Release -v:q -nologo >/dev/null
dotnet build "$root/tools/Cam" -c Release -v:q -nologo >/dev/null

echo "== ResNet-18 shape, random weights (ms, median)"
torch_out="$($py "$root/bench/resnet18_torch.py")"
ours_out="$(dotnet "$root/bench/CamEngine.Bench/bin/Release/net10.0/CamEngine.Bench.dll" resnet18 cpu | grep '^batch\|VmHWM')"
echo "pytorch: $torch_out"
echo "engine:  $ours_out"
$py - "$torch_out" "$ours_out" <<'PY'
import re, sys
def parse(text):
    r = {}
    for b, f, l4, i in re.findall(r"batch (\d+): forward ([\d.]+) ms, forward\+backward to layer4 ([\d.]+) ms, "
                                  r"forward\+backward to input ([\d.]+) ms", text):
        r[int(b)] = (float(f), float(l4), float(i))
    return r
t, o = parse(sys.argv[1]), parse(sys.argv[2])
print(f"{'':8} {'forward':>22} {'Grad-CAM (to layer4)':>22} {'to input':>22}")
for b in sorted(t):
    cells = [f"{o[b][k]:7.1f}/{t[b][k]:7.1f} = {o[b][k] / t[b][k]:4.2f}" for k in range(3)]
    print(f"batch {b:<2} " + " ".join(f"{c:>22}" for c in cells))
PY

echo "== ResNet-50, random weights (ms, median)"
$py "$root/bench/resnet50_torch.py" export "$work" >/dev/null
dotnet "$root/tools/Cam/bin/Release/net10.0/cam.dll" convert "$work/resnet50.onnx" -o "$work/resnet50.safetensors" >/dev/null
ours50="$(dotnet "$root/bench/CamEngine.Bench/bin/Release/net10.0/CamEngine.Bench.dll" model "$work/resnet50.safetensors" \
  /layer4/layer4.2/relu_2/Relu_output_0 cpu | grep '^batch')"
torch50="$($py "$root/bench/resnet50_torch.py" | grep '^batch')"
echo "pytorch: $torch50"
echo "engine:  $ours50"
$py - "$torch50" "$ours50" <<'PY'
import re, sys
def parse(text):
    return {int(b): (float(f), float(g)) for b, f, g in
            re.findall(r"batch (\d+): forward ([\d.]+) ms, Grad-CAM \(forward\+backward to layer4\) ([\d.]+) ms", text)}
t, o = parse(sys.argv[1]), parse(sys.argv[2])
print(f"{'':8} {'forward':>22} {'Grad-CAM (to layer4)':>22}")
for b in sorted(t):
    print(f"batch {b:<2} " + " ".join(f"{o[b][k]:7.1f}/{t[b][k]:7.1f} = {o[b][k] / t[b][k]:4.2f}".rjust(22) for k in range(2)))
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
