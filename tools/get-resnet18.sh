#!/usr/bin/env bash
# Gets the pretrained ResNet-18 that ML.NET's DnnImageFeaturizer ships (NuGet package
# Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1, restored like any .NET dependency) and converts it into
# models/resnet18.safetensors with its preprocessing recorded: ML.NET resizes images isotropically with a
# centre crop (ResizeImages' defaults IsoCrop + Anchor.Center, i.e. shorter side to 224, then crop 224x224),
# extracts RGB bytes 0..255, and ResNetPreprocess.onnx reorders them to BGR and subtracts a per-pixel mean image.
#
# usage: tools/get-resnet18.sh [OUTPUT.safetensors]     (default models/resnet18.safetensors)
# Needs only the .NET 10 SDK and access to the NuGet feed. Run once; about a minute.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/models/resnet18.safetensors}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "restoring Microsoft.ML.DnnImageFeaturizer.ResNet18 and copying its ONNX files..."
dotnet build "$root/tools/ModelAssets" -t:CopyModels -p:ModelsOut="$work" -v:q -nologo >/dev/null
for f in ResNet18.onnx ResNetPreprocess.onnx; do
  [[ -f "$work/$f" ]] || { echo "get-resnet18: $f was not restored" >&2; exit 2; }
done

echo "building cam and converting..."
dotnet build "$root/tools/Cam" -c Release -v:q -nologo >/dev/null
dotnet "$root/tools/Cam/bin/Release/net10.0/cam.dll" convert "$work/ResNet18.onnx" -o "$out" \
  --preprocess "$work/ResNetPreprocess.onnx" --resize 224
