#!/usr/bin/env bash
# The GPU suite of the ILGPU kernels. Its last line is `gpu suite: N kernels checked, M failed`; exit 0 when M = 0.
#
#   bench/gpu/run.sh --dry        no GPU needed (a machine with the .NET SDK): compiles every kernel to PTX for sm_90
#                                 and sm_75 and prints, for each conv/GEMM kernel, its shared-memory bytes and the
#                                 static count of global loads against FMAs in its main loop; then runs the tiled
#                                 kernels on ILGPU's CPU accelerator shaped like a GPU (256-thread groups, warps of
#                                 32, real barriers) against the double-precision reference on small edge shapes.
#   bench/gpu/run.sh --bundle     (on the machine with the SDK) packs the suite and a .NET runtime into .device/
#                                 with ../shared/gpu/bundle.sh (set BUNDLE to its path elsewhere); copy the checkout
#                                 with .device/ to the GPU machine.
#   bench/gpu/run.sh [--quick]    on a CUDA machine (no SDK needed there: it runs .device/ when `dotnet` is absent;
#                                 PyTorch with CUDA for the comparison columns): the kernel checks on the GPU, then
#                                 one table in a few minutes: ResNet-50's conv layers (forward, backward-data,
#                                 backward-weights) against cuDNN fp32 with TF32 off and on, ResNet-50 Grad-CAM
#                                 throughput at batch 64 against PyTorch eager, ResNet-18 Score-CAM per image; then
#                                 every applicable method on CUDA against the managed CPU backend on four models
#                                 (tiny ResNet, MobileNetV2, ConvNeXt, ViT), map by map (`method parity: ...`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
mode=gpu
quick=()
for a in "$@"; do
  case "$a" in
    --dry) mode=dry ;;
    --bundle) mode=bundle ;;
    --quick) quick=(--quick) ;;
    *) echo "usage: bench/gpu/run.sh [--dry | --bundle | --quick]" >&2; exit 2 ;;
  esac
done

project=bench/gpu/GpuSuite/CamEngine.GpuSuite.csproj
if [ "$mode" = bundle ]; then
  "${BUNDLE:-$root/../shared/gpu/bundle.sh}" "$project"
  exit 0
fi

suite() {
  if command -v dotnet >/dev/null 2>&1 && [ -z "${GPU_SUITE_BUNDLED:-}" ]; then
    dotnet build "$project" -c Release -v:q -nologo >/dev/null
    DOTNET_TieredPGO=0 dotnet bench/gpu/GpuSuite/bin/Release/net10.0/CamEngine.GpuSuite.dll "$@"
  elif [ -x .device/run ] && [ -d .device/CamEngine.GpuSuite ]; then
    bash .device/run CamEngine.GpuSuite "$@"
  else
    echo "gpu suite: neither the .NET SDK nor a bundle (.device/, from bench/gpu/run.sh --bundle) is here" >&2
    exit 2
  fi
}

if [ "$mode" = dry ]; then
  suite --dry
  exit $?
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
suite --layers "$work/layers.json"
torch_args=()
if python3 -c 'import sys, torch, torchvision; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  if timeout 200 python3 bench/gpu/torch_suite.py "$work/layers.json" "${quick[@]}" > "$work/torch.json"; then
    torch_args=(--torch "$work/torch.json")
  else
    echo "PyTorch side failed or took over 200 s: its columns stay empty" >&2
  fi
else
  echo "no PyTorch with CUDA here: the PyTorch columns stay empty" >&2
fi
rc=0
suite --gpu "${torch_args[@]}" "${quick[@]}" || rc=$?
echo
suite --methods cuda "$root" || rc=$?
exit $rc
