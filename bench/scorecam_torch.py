"""Score-CAM the way pytorch-grad-cam computes it (a forward hook captures layer4's activations; each channel is
upsampled with align_corners=True, min-max normalized with eps 1e-8, multiplies the input, and the masked inputs
run in batches of 32 under no_grad; weights = softmax over the channels of the target logit), timed for one
224x224 image on the ResNet-18 topology of resnet18_torch.py (random weights), 2 threads. Compare with
`cam explain MODEL IMAGE --method scorecam --device cpu` (whole process) or its manifest's method time.
Usage: /usr/bin/python3 bench/scorecam_torch.py [--pgc]

--pgc runs it the way a pytorch-grad-cam user does, step by step as that library's ScoreCAM does it: torchvision's
resnet18 as loaded (batch-norm modules, not folded), a forward hook on layer4 that stores a CPU copy of the
activations on every forward (the library's ActivationsAndGradients), nn.UpsamplingBilinear2d, the masked inputs
built for all 512 channels at once, and the target read one sample at a time with .item() (ClassifierOutputTarget).
"""
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet18_torch import ResNet18Folded  # noqa: E402

torch.set_num_threads(2)


def main_pgc():
    import torchvision
    t0 = time.perf_counter()
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    activations = []
    handle = net.layer4.register_forward_hook(lambda m, i, o: activations.append(o.cpu().detach()))
    logits = net(x)
    target = int(logits.argmax(1))
    a = activations[-1]
    with torch.no_grad():
        up = torch.nn.UpsamplingBilinear2d(size=x.shape[-2:])(a)
        maxs = up.view(up.size(0), up.size(1), -1).max(dim=-1)[0][:, :, None, None]
        mins = up.view(up.size(0), up.size(1), -1).min(dim=-1)[0][:, :, None, None]
        up = (up - mins) / (maxs - mins + 1e-8)
        inputs = x[:, None, :, :] * up[:, :, None, :, :]
        scores = []
        for tensor in inputs:
            for i in range(0, tensor.size(0), 32):
                batch = tensor[i:i + 32, :]
                scores.extend(o[target].cpu().item() for o in net(batch))
        w = torch.softmax(torch.tensor(scores), 0)
        cam = torch.relu((w[:, None, None] * a[0]).sum(0))
    handle.remove()
    print(f"torch {torch.__version__}: Score-CAM the pytorch-grad-cam way (torchvision resnet18 with batch-norm, "
          f"hooks on every forward), 512 masked forwards in batches of 32: {time.perf_counter() - t0:.1f} s "
          f"(map {tuple(cam.shape)})")


def main():
    if "--pgc" in sys.argv[1:]:
        main_pgc()
        return
    t0 = time.perf_counter()
    torch.manual_seed(0)
    net = ResNet18Folded().eval()
    x = torch.randn(1, 3, 224, 224)
    captured = {}
    handle = net.layer4.register_forward_hook(lambda m, i, o: captured.__setitem__("a", o.detach()))
    with torch.no_grad():
        logits, _ = net(x)
        target = int(logits.argmax(1))
        a = captured["a"]
        up = F.interpolate(a, size=(224, 224), mode="bilinear", align_corners=True)[0]
        flat = up.view(up.shape[0], -1)
        lo, hi = flat.min(1, keepdim=True)[0], flat.max(1, keepdim=True)[0]
        masks = ((flat - lo) / (hi - lo + 1e-8)).view_as(up)
        scores = []
        for start in range(0, masks.shape[0], 32):
            batch = x * masks[start:start + 32, None]
            out, _ = net(batch)
            scores.append(out[:, target])
        w = torch.softmax(torch.cat(scores), 0)
        cam = torch.relu((w[:, None, None] * a[0]).sum(0))
    handle.remove()
    print(f"torch {torch.__version__}: Score-CAM, 512 masked forwards in batches of 32: {time.perf_counter() - t0:.1f} s "
          f"(map {tuple(cam.shape)})")


if __name__ == "__main__":
    main()
