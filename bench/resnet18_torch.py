"""PyTorch side of ResNet18Benchmarks: the same topology (torchvision resnet18 with batch-norm folded, as the
engine runs it after ONNX conversion), random weights, on 2 threads. Times forward, forward + backward to
layer4's output, forward + backward to the input, batch 1 and 8 (median of repeated runs after warm-up).
Run: /usr/bin/python3 bench/resnet18_torch.py
"""
import time

import torch
import torch.nn as nn

torch.set_num_threads(2)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.down = nn.Conv2d(cin, cout, 1, stride, 0) if stride != 1 or cin != cout else None

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = self.conv2(h)
        return torch.relu(h + (self.down(x) if self.down is not None else x))


class ResNet18Folded(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.pool = nn.MaxPool2d(3, 2, 1)
        blocks, cin = [], 64
        for stage, cout in enumerate([64, 128, 256, 512]):
            for b in range(2):
                blocks.append(Block(cin, cout, 2 if stage > 0 and b == 0 else 1))
                cin = cout
        self.layers1to3 = nn.Sequential(*blocks[:6])
        self.layer4 = nn.Sequential(*blocks[6:])
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        a = self.layer4(self.layers1to3(x))
        return self.fc(a.mean((2, 3))), a


def median_ms(fn, reps):
    for _ in range(10):  # warm-up, as TorchLike.Median on the engine's side
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    torch.manual_seed(0)
    net = ResNet18Folded().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for batch in (1, 8):
        x = torch.randn(batch, 3, 224, 224)
        reps = 20 if batch == 1 else 5

        def forward():
            with torch.no_grad():
                net(x)

        def to_layer4():
            # Grad-CAM on layer4 needs the forward and d(score)/d(layer4 output): only fc and the mean lie
            # between them, so the trunk runs without autograd, as the engine's reverse pass stops there too.
            with torch.no_grad():
                a = net.layer4(net.layers1to3(net.pool(torch.relu(net.conv1(x)))))
            a.requires_grad_(True)
            net.fc(a.mean((2, 3)))[:, 281].sum().backward()
            return a.grad

        def to_input():
            xi = x.clone().requires_grad_(True)
            logits, _ = net(xi)
            logits[:, 281].sum().backward()
            return xi.grad

        print(f"batch {batch}: forward {median_ms(forward, reps):.1f} ms, "
              f"forward+backward to layer4 {median_ms(to_layer4, reps):.1f} ms, "
              f"forward+backward to input {median_ms(to_input, reps):.1f} ms")


if __name__ == "__main__":
    main()
