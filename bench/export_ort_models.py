"""Models for the engine vs ONNX Runtime comparison (bench/compare.sh --ort): torchvision ResNet-18, ResNet-50,
MobileNetV2, EfficientNet-B0, ConvNeXt-T and ViT-B/16 with random weights (torch.manual_seed per model), exported to
ONNX (opset 13, so LayerNorm and GELU come decomposed, dynamic batch, 3x224x224 input) in eval mode. A linear layer
initialized to zeros (ViT's head) gets normal(0, 0.02) weights, so that the outputs the comparison checks are not all
zero. Batch-norm statistics are first taken from two random
batches (train mode, cumulative average): with torchvision's initialization alone, MobileNetV2's and EfficientNet's
depthwise layers shrink the activations about sqrt(C)-fold per block (MobileNetV2's logits come out near 1e-9), and
subnormal floats would time something no real model runs. The same .onnx file is what ONNX Runtime runs and what
`cam convert` turns into the engine's .safetensors.

  /usr/bin/python3 bench/export_ort_models.py DIR [NAME ...]    writes DIR/NAME.onnx for the names (default: all)
"""
import contextlib
import os
import sys

import torch
import torchvision

MODELS = {
    "resnet18": (torchvision.models.resnet18, 18),
    "resnet50": (torchvision.models.resnet50, 50),
    "mobilenet_v2": (torchvision.models.mobilenet_v2, 2),
    "efficientnet_b0": (torchvision.models.efficientnet_b0, 0),
    "convnext_tiny": (torchvision.models.convnext_tiny, 7),
    "vit_b_16": (torchvision.models.vit_b_16, 16),
}


def export(name, path):
    build, seed = MODELS[name]
    torch.manual_seed(seed)
    net = build(weights=None)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if bns:
        for m in bns:
            m.momentum = None
        net.train()
        with torch.no_grad():
            for _ in range(2):
                net(torch.randn(4, 3, 224, 224))
    for m in net.modules():
        if isinstance(m, torch.nn.Linear) and not m.weight.detach().any():
            torch.nn.init.normal_(m.weight, std=0.02)
    net.eval()
    x = torch.randn(1, 3, 224, 224)
    # With gradients off, eval-mode attention takes PyTorch's fused fast path (aten::_native_multi_head_attention),
    # which has no ONNX export: ViT is traced with them on.
    with torch.no_grad() if name != "vit_b_16" else contextlib.nullcontext():
        torch.onnx.export(net, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    for name in names:
        if name not in MODELS:
            sys.exit(f"export_ort_models.py: unknown model '{name}' (known: {', '.join(MODELS)})")
        export(name, os.path.join(out, name + ".onnx"))


if __name__ == "__main__":
    main()
