"""Whole-process PyTorch counterpart of `cam explain MODEL IMAGES... --method gradcam --npy`: start Python, build
ResNet-18 (batch-norm folded, as the engine runs it; random weights: the timing does not depend on them), read
and preprocess the images (resize to 224x224, ImageNet normalization), run Grad-CAM on layer4 in batches of 8
(target: top-1 class), upsample each map bilinearly to 224x224, min-max normalize, and write STEM.gradcam.npy and
an overlay PNG per image. Used by bench/compare.sh; 2 threads like the engine's 2 cores.
Usage: /usr/bin/python3 bench/gradcam_torch.py OUTDIR IMAGE...
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet18_torch import ResNet18Folded  # noqa: E402

torch.set_num_threads(2)


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    net = ResNet18Folded().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    for start in range(0, len(paths), 8):
        chunk = paths[start:start + 8]
        images = [Image.open(p).convert("RGB").resize((224, 224), Image.BILINEAR) for p in chunk]
        x = torch.stack([(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255 - mean) / std
                         for im in images])
        with torch.no_grad():
            a = net.layer4(net.layers1to3(net.pool(torch.relu(net.conv1(x)))))
        a.requires_grad_(True)
        logits = net.fc(a.mean((2, 3)))
        top = logits.argmax(1)
        logits.gather(1, top[:, None]).sum().backward()
        w = a.grad.mean((2, 3), keepdim=True)
        cam = torch.relu((w * a).sum(1, keepdim=True)).detach()
        cam = F.interpolate(cam, size=(224, 224), mode="bilinear", align_corners=False)[:, 0]
        for p, im, m in zip(chunk, images, cam):
            m = m - m.min()
            m = (m / (m.max() + 1e-7)).numpy().astype(np.float32)
            stem = os.path.join(out, os.path.splitext(os.path.basename(p))[0])
            np.save(stem + ".gradcam.npy", m)
            heat = np.stack([m, np.zeros_like(m), 1 - m], axis=2) * 255
            Image.fromarray((0.5 * np.asarray(im) + 0.5 * heat).astype(np.uint8)).save(stem + ".gradcam.png")


if __name__ == "__main__":
    main()
