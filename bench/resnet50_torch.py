"""PyTorch side of the ResNet-50 comparison: torchvision resnet50(weights=None), torch.manual_seed(50), eval mode,
batch-norm folded into the convs (as the engine runs it after ONNX conversion), on 2 threads, 224x224.

  /usr/bin/python3 bench/resnet50_torch.py export DIR
      writes DIR/resnet50.onnx (opset 11; convert it with `cam convert`), DIR/input.npy (float32 (1,3,224,224),
      seed 1) and DIR/gradcam_ref.npy (Grad-CAM of class 281 on layer4's output: ReLU(sum_k mean(dS/dA_k) A_k),
      7x7, before upsampling and normalization) and DIR/gradcam_ref_up.npy (the same map bilinearly upsampled to
      224x224 and min-max normalized, pytorch-grad-cam style)
  /usr/bin/python3 bench/resnet50_torch.py
      times forward, Grad-CAM (forward + backward to layer4's output, via hooks) at batch 1 and 8: median of 20
      calls (batch 1) or 5 (batch 8) after 10 warm-up calls, printed in the format bench/compare.sh parses.
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

from resnet18_torch import median_ms  # same timing rule as the ResNet-18 script (Python puts this script's folder on sys.path)

torch.set_num_threads(2)
CLASS = 281


def build():
    torch.manual_seed(50)
    net = torchvision.models.resnet50(weights=None).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def fold(net):
    """The same network with every BatchNorm folded into its conv (what ONNX export in eval mode produces)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    net.conv1 = fuse_conv_bn_eval(net.conv1, net.bn1)
    net.bn1 = nn.Identity()
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for b in layer:
            for i in (1, 2, 3):
                setattr(b, f"conv{i}", fuse_conv_bn_eval(getattr(b, f"conv{i}"), getattr(b, f"bn{i}")))
                setattr(b, f"bn{i}", nn.Identity())
            if b.downsample is not None:
                b.downsample = nn.Sequential(fuse_conv_bn_eval(b.downsample[0], b.downsample[1]))
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class GradCam:
    """Hook-based Grad-CAM: a forward hook on the target layer hands on its output as a leaf that requires grad
    (parameters and input do not, so autograd records nothing below it: the trunk runs as in inference and the
    backward runs from the score through fc and the average pool to that output only, as the engine's reverse
    pass stops at the layer too); the map is ReLU(sum_k mean(dS/dA_k) A_k)."""

    def __init__(self, net, layer):
        self.net, self.act = net, None
        layer.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output):
        self.act = output.detach().requires_grad_(True)
        return self.act

    def __call__(self, x, cls=CLASS):
        logits = self.net(x)
        logits[:, cls].sum().backward()
        w = self.act.grad.mean((2, 3), keepdim=True)
        return torch.relu((w * self.act).sum(1)).detach()


def export(out):
    net = build()
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32))
    torch.onnx.export(net, x, f"{out}/resnet50.onnx", opset_version=11, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    np.save(f"{out}/input.npy", x.numpy())
    # Reference map from the unfolded network in float64, so the comparison measures the engine's error.
    net64 = build().double()
    a = net64.layer4(net64.layer3(net64.layer2(net64.layer1(
        net64.maxpool(net64.relu(net64.bn1(net64.conv1(x.double()))))))))
    a.requires_grad_(True)
    logits = net64.fc(torch.flatten(net64.avgpool(a), 1))
    logits[0, CLASS].backward()
    cam = torch.relu((a.grad.mean((2, 3), keepdim=True) * a).sum(1)).detach()
    np.save(f"{out}/gradcam_ref.npy", cam[0].numpy().astype(np.float32))
    up = torch.nn.functional.interpolate(cam[None], size=(224, 224), mode="bilinear", align_corners=False)[0, 0]
    up = (up - up.min()) / (up.max() - up.min() + 1e-7)
    np.save(f"{out}/gradcam_ref_up.npy", up.numpy().astype(np.float32))
    print(f"top1 {int(logits.argmax())}, logit[{CLASS}] {float(logits[0, CLASS]):.6g}, cam max {float(cam.max()):.6g}")


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "export":
        export(sys.argv[2])
        return
    net = fold(build())
    cam = GradCam(net, net.layer4)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for batch in (1, 8):
        x = torch.randn(batch, 3, 224, 224)
        reps = 20 if batch == 1 else 5

        def forward():
            with torch.no_grad():
                net(x)

        print(f"batch {batch}: forward {median_ms(forward, reps):.1f} ms, "
              f"Grad-CAM (forward+backward to layer4) {median_ms(lambda: cam(x), reps):.1f} ms")


if __name__ == "__main__":
    main()
