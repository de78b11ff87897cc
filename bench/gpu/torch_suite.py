"""PyTorch side of the GPU suite (bench/gpu/run.sh): times, on the CUDA device, the same work the engine's suite
times, and prints one JSON object on stdout (progress on stderr):

  layers      ResNet-50's conv layers from LAYERS.json (written by `CamEngine.GpuSuite --layers`): forward,
              backward-data and backward-weights through cuDNN (aten::convolution_backward with one output mask at a
              time), fp32 with TF32 off and on, cudnn.benchmark on; median ms of synchronized calls after warm-up
  gradcam     torchvision resnet50(weights=None), seed 50, eval, batch-norm folded into the convs (as the engine runs
              it after ONNX conversion), batch 64: forward + backward to layer4's output via a hook ("passes"), and
              the whole method (upload, passes, weights, map, bilinear upsampling to 224, min-max, copy to the host)
  scorecam    torchvision resnet18, one 224x224 image, pytorch-grad-cam's steps: layer4 activations, each channel
              upsampled (align_corners=True) and min-max normalized, masked inputs in batches of 32 under no_grad,
              softmax of the target logits as weights

Gradient CAM and Score-CAM run with TF32 off (strict fp32, as the engine computes); the *_tf32 entries with it on.
Usage: python3 bench/gpu/torch_suite.py LAYERS.json [--quick] > torch.json
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def median_ms(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def set_tf32(on):
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def conv_layers(spec, reps):
    n = spec["batch"]
    out = {}
    for l in spec["layers"]:
        c, h, k, ks, s, p = l["c"], l["h"], l["k"], l["kernel"], l["stride"], l["pad"]
        x = torch.randn(n, c, h, h, device="cuda")
        w = torch.randn(k, c, ks, ks, device="cuda") * (2.0 / (c * ks * ks)) ** 0.5
        b = torch.randn(k, device="cuda") * 0.05
        oh = (h + 2 * p - ks) // s + 1
        dy = torch.randn(n, k, oh, oh, device="cuda")
        args = ([k], [s, s], [p, p], [1, 1], False, [0, 0], 1)
        r = {"fwd": [], "bwd_data": [], "bwd_weights": []}
        for tf32 in (False, True):
            set_tf32(tf32)
            r["fwd"].append(median_ms(lambda: F.conv2d(x, w, b, s, p), reps))
            r["bwd_data"].append(median_ms(
                lambda: torch.ops.aten.convolution_backward(dy, x, w, *args, [True, False, False]), reps))
            r["bwd_weights"].append(median_ms(
                lambda: torch.ops.aten.convolution_backward(dy, x, w, *args, [False, True, False]), reps))
        out[l["name"]] = r
        log(f"  {l['name']}: {r}")
    return out


def folded(net):
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    net.conv1 = fuse_conv_bn_eval(net.conv1, net.bn1)
    net.bn1 = nn.Identity()
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for blk in layer:
            for i in (1, 2, 3):
                if hasattr(blk, f"conv{i}"):
                    setattr(blk, f"conv{i}", fuse_conv_bn_eval(getattr(blk, f"conv{i}"), getattr(blk, f"bn{i}")))
                    setattr(blk, f"bn{i}", nn.Identity())
            if blk.downsample is not None:
                blk.downsample = nn.Sequential(fuse_conv_bn_eval(blk.downsample[0], blk.downsample[1]))
    for q in net.parameters():
        q.requires_grad_(False)
    return net


def gradcam(batch, reps):
    torch.manual_seed(50)
    net = folded(torchvision.models.resnet50(weights=None).eval()).cuda()
    keep = {}

    def hook(m, i, o):
        o = o.detach().requires_grad_(True)
        keep["a"] = o
        return o

    net.layer4.register_forward_hook(hook)
    host = torch.randn(batch, 3, 224, 224).pin_memory()
    x = host.cuda()

    def passes():
        logits = net(x)
        torch.autograd.grad(logits[:, 281].sum(), keep["a"])

    def full():
        xs = host.cuda(non_blocking=True)
        logits = net(xs)
        cls = logits.argmax(1, keepdim=True)
        a = keep["a"]
        (g,) = torch.autograd.grad(logits.gather(1, cls).sum(), a)
        cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
        up = F.interpolate(cam, size=(224, 224), mode="bilinear", align_corners=False).flatten(1)
        lo, hi = up.min(1, keepdim=True)[0], up.max(1, keepdim=True)[0]
        return ((up - lo) / (hi - lo).clamp_min(1e-8)).cpu()

    r = {}
    for tf32 in (False, True):
        set_tf32(tf32)
        suffix = "_tf32" if tf32 else ""
        r["passes_ms" + suffix] = median_ms(passes, reps)
        r["full_ms" + suffix] = median_ms(full, reps)
    set_tf32(False)
    log(f"  gradcam: {r}")
    return r


def scorecam(reps):
    torch.manual_seed(0)
    net = folded(torchvision.models.resnet18(weights=None).eval()).cuda()
    keep = {}
    net.layer4.register_forward_hook(lambda m, i, o: keep.__setitem__("a", o))
    x = torch.randn(1, 3, 224, 224, device="cuda")

    def run():
        with torch.no_grad():
            logits = net(x)
            target = int(logits.argmax(1))
            a = keep["a"]
            up = nn.UpsamplingBilinear2d(size=x.shape[-2:])(a)
            flat = up.view(up.size(0), up.size(1), -1)
            mins, maxs = flat.min(-1)[0][:, :, None, None], flat.max(-1)[0][:, :, None, None]
            up = (up - mins) / (maxs - mins + 1e-8)
            masked = x[:, None] * up[:, :, None]
            scores = []
            for i in range(0, masked.size(1), 32):
                scores.append(net(masked[0, i:i + 32])[:, target])
            weights = torch.softmax(torch.cat(scores), 0)
            cam = F.relu((weights[:, None, None] * a[0]).sum(0))
            return cam.cpu()

    set_tf32(False)
    r = {"per_image_ms": median_ms(run, reps, warmup=2)}
    log(f"  scorecam: {r}")
    return r


def main():
    if len(sys.argv) < 2 or not torch.cuda.is_available():
        log("usage: torch_suite.py LAYERS.json [--quick] (needs a CUDA device)")
        sys.exit(2)
    quick = "--quick" in sys.argv
    spec = json.load(open(sys.argv[1]))
    torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    log(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    result = {
        "torch": torch.__version__, "device": torch.cuda.get_device_name(0), "batch": spec["batch"],
        "layers": conv_layers(spec, 5 if quick else 10),
        "gradcam": gradcam(spec["gradcam_batch"], 3 if quick else 7),
        "scorecam": scorecam(2 if quick else 5),
    }
    log(f"PyTorch side took {time.perf_counter() - t0:.0f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
