#!/usr/bin/env python3
"""Builds the corpus of real architectures Atrous is checked against.

Each model is a real architecture exported from PyTorch (torchvision's own
classes where they take a width, the same blocks at a smaller width where
they do not) with seeded random weights, or a trained ONNX file shipped in a
PyPI package. For each one this writes, into OUT/<name>/:

  model.onnx    the model
  input.npy     a seeded input, float32 (1, 3, H, W)
  output_K.npy  ONNX Runtime's outputs (graph optimizations off), in graph order

and OUT/index.json: per model its source, input shape, two spatial layers
(values with a (1, C, h, w) shape, for features and hypercolumns), and the
tolerance the comparison uses (rtol 1e-3, atol 1e-4 of each output's range).

  python3 Scripts/export-model-corpus.py              # small widths: Tests/Fixtures/model-corpus
  python3 Scripts/export-model-corpus.py --full OUT   # full-size models, for Benchmarks/models.py

Needs: pip install torch torchvision onnx onnxruntime; the PP-OCR models
come from the rapidocr_onnxruntime wheel (pip download --no-deps).
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torchvision
from torchvision.models import convnext, densenet, efficientnet, mnasnet, mobilenetv2, mobilenetv3
from torchvision.models import regnet, resnet, segmentation, shufflenetv2, squeezenet

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


# Small-width variants: the architectures' own classes and blocks.

def small_resnet18():
    """ResNet-18's layout (BasicBlock, [2, 2, 2, 2]) at a quarter of its width."""
    class Narrow(resnet.ResNet):
        def __init__(self):
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes, self.dilation, self.groups, self.base_width = 16, 1, 1, 64
            self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(resnet.BasicBlock, 16, 2)
            self.layer2 = self._make_layer(resnet.BasicBlock, 32, 2, stride=2)
            self.layer3 = self._make_layer(resnet.BasicBlock, 64, 2, stride=2)
            self.layer4 = self._make_layer(resnet.BasicBlock, 128, 2, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(128, 10)
    return Narrow()


def small_googlenet():
    """GoogLeNet's stem and Inception blocks at an eighth of the width."""
    module = sys.modules["torchvision.models.googlenet"]  # the package's name is taken by the function
    Inception, Conv = module.Inception, module.BasicConv2d
    return nn.Sequential(
        Conv(3, 8, kernel_size=7, stride=2, padding=3), nn.MaxPool2d(3, 2, ceil_mode=True),
        Conv(8, 8, kernel_size=1), Conv(8, 24, kernel_size=3, padding=1), nn.MaxPool2d(3, 2, ceil_mode=True),
        Inception(24, 8, 12, 16, 2, 4, 4), Inception(32, 16, 16, 24, 4, 12, 8), nn.MaxPool2d(3, 2, ceil_mode=True),
        Inception(60, 24, 12, 26, 2, 6, 8), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 10))


def small_squeezenet():
    """SqueezeNet 1.1's layout of Fire modules at a quarter of the width."""
    Fire = squeezenet.Fire
    return nn.Sequential(
        nn.Conv2d(3, 16, kernel_size=3, stride=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(16, 4, 16, 16), Fire(32, 4, 16, 16), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(32, 8, 32, 32), Fire(64, 8, 32, 32), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(64, 12, 48, 48), Fire(96, 12, 48, 48), Fire(96, 16, 64, 64), Fire(128, 16, 64, 64),
        nn.Dropout(0.5), nn.Conv2d(128, 10, kernel_size=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())


def small_efficientnet_b0():
    settings, last = efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.5)
    return efficientnet.EfficientNet(settings, 0.2, last_channel=last, num_classes=10)


def small_regnet():
    params = regnet.BlockParams.from_init_params(depth=6, w_0=16, w_a=8.0, w_m=2.0, group_width=8, se_ratio=0.25)
    return regnet.RegNet(params, num_classes=10)


def small_convnext():
    C = convnext.CNBlockConfig
    return convnext.ConvNeXt([C(16, 32, 1), C(32, 64, 1), C(64, 128, 2), C(128, None, 1)], num_classes=10)


class UNet(nn.Module):
    """A small U-Net: two poolings down, transposed convolutions up, skips concatenated."""

    def __init__(self, width=8, classes=3):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                                 nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True))
        w = width
        self.down1, self.down2, self.bottom = block(3, w), block(w, 2 * w), block(2 * w, 4 * w)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2), block(4 * w, 2 * w)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2), block(2 * w, w)
        self.head = nn.Conv2d(w, classes, 1)

    def forward(self, x):
        a = self.down1(x)
        b = self.down2(nn.functional.max_pool2d(a, 2))
        c = self.bottom(nn.functional.max_pool2d(b, 2))
        d = self.dec2(torch.cat([self.up2(c), b], 1))
        return self.head(self.dec1(torch.cat([self.up1(d), a], 1)))


class YoloX(nn.Module):
    """A YOLOX-style detector at small width: a Focus stem (four strided slices
    concatenated), CSP stages of SiLU convolutions, an SPP block, a
    path-aggregation neck with nearest upsampling, and decoupled heads whose
    boxes are decoded on the grid (sigmoid objectness and classes, exp sizes)."""

    def __init__(self, width=8, classes=4):
        super().__init__()

        def conv(i, o, k=1, s=1):
            return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o), nn.SiLU())

        class CSP(nn.Module):
            def __init__(self, i, o, n=1):
                super().__init__()
                h = o // 2
                self.a, self.b, self.out = conv(i, h), conv(i, h), conv(2 * h, o)
                self.m = nn.Sequential(*[nn.Sequential(conv(h, h), conv(h, h, 3)) for _ in range(n)])

            def forward(self, x):
                a = self.a(x)
                return self.out(torch.cat([self.m(a) + a, self.b(x)], 1))

        class SPP(nn.Module):
            def __init__(self, i, o):
                super().__init__()
                self.a, self.out = conv(i, i // 2), conv(i // 2 * 4, o)
                self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13))

            def forward(self, x):
                x = self.a(x)
                return self.out(torch.cat([x] + [p(x) for p in self.pools], 1))

        w = width
        self.stem = conv(12, w, 3)
        self.dark2 = nn.Sequential(conv(w, 2 * w, 3, 2), CSP(2 * w, 2 * w))
        self.dark3 = nn.Sequential(conv(2 * w, 4 * w, 3, 2), CSP(4 * w, 4 * w, 2))
        self.dark4 = nn.Sequential(conv(4 * w, 8 * w, 3, 2), CSP(8 * w, 8 * w, 2))
        self.dark5 = nn.Sequential(conv(8 * w, 16 * w, 3, 2), SPP(16 * w, 16 * w), CSP(16 * w, 16 * w))
        self.lateral5, self.top4 = conv(16 * w, 8 * w), CSP(16 * w, 8 * w)
        self.lateral4, self.top3 = conv(8 * w, 4 * w), CSP(8 * w, 4 * w)
        self.down3, self.bottom4 = conv(4 * w, 4 * w, 3, 2), CSP(8 * w, 8 * w)
        self.down4, self.bottom5 = conv(8 * w, 8 * w, 3, 2), CSP(16 * w, 16 * w)
        self.heads = nn.ModuleList(
            nn.ModuleList([conv(c, 4 * w), nn.Sequential(conv(4 * w, 4 * w, 3), nn.Conv2d(4 * w, classes, 1)),
                           nn.Sequential(conv(4 * w, 4 * w, 3)), nn.Conv2d(4 * w, 4, 1), nn.Conv2d(4 * w, 1, 1)])
            for c in (4 * w, 8 * w, 16 * w))
        self.strides = (8, 16, 32)

    def forward(self, x):
        x = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
        c3 = self.dark3(self.dark2(self.stem(x)))
        c4 = self.dark4(c3)
        c5 = self.dark5(c4)
        p5 = self.lateral5(c5)
        p4 = self.lateral4(self.top4(torch.cat([nn.functional.interpolate(p5, scale_factor=2.0), c4], 1)))
        n3 = self.top3(torch.cat([nn.functional.interpolate(p4, scale_factor=2.0), c3], 1))
        n4 = self.bottom4(torch.cat([self.down3(n3), p4], 1))
        n5 = self.bottom5(torch.cat([self.down4(n4), p5], 1))
        outputs = []
        for feature, (stem, cls, reg, box, obj), stride in zip((n3, n4, n5), self.heads, self.strides):
            f = stem(feature)
            r = reg(f)
            b, o, c = box(r), obj(r).sigmoid(), cls(f).sigmoid()
            h, w = f.shape[-2:]
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            grid = torch.stack((xs, ys), 0).float().view(1, 2, h, w)
            xy = (b[:, :2] + grid) * stride
            wh = b[:, 2:4].exp() * stride
            outputs.append(torch.cat([xy, wh, o, c], 1).flatten(2))
        return torch.cat(outputs, 2).transpose(1, 2)


class Segmentation(nn.Module):
    """torchvision's segmentation models return a dict; export its 'out'."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


def small_lraspp():
    backbone = mobilenetv3.mobilenet_v3_large(width_mult=0.5, dilated=True).features
    stages = [0] + [i for i, b in enumerate(backbone) if getattr(b, "_is_cn", False)] + [len(backbone) - 1]
    low, high = stages[-4], stages[-1]
    from torchvision.models._utils import IntermediateLayerGetter
    body = IntermediateLayerGetter(backbone, return_layers={str(low): "low", str(high): "high"})
    return Segmentation(segmentation.lraspp.LRASPP(body, backbone[low].out_channels, backbone[high].out_channels, 4, 32))


SMALL = {
    "resnet18": (small_resnet18, 96),
    "mobilenet_v2": (lambda: mobilenetv2.MobileNetV2(width_mult=0.25, num_classes=10), 96),
    "mobilenet_v3_small": (lambda: mobilenetv3.mobilenet_v3_small(width_mult=0.25, num_classes=10), 96),
    "mobilenet_v3_large": (lambda: mobilenetv3.mobilenet_v3_large(width_mult=0.25, num_classes=10), 96),
    "efficientnet_b0": (small_efficientnet_b0, 96),
    "regnet": (small_regnet, 96),
    "shufflenet_v2": (lambda: shufflenetv2.ShuffleNetV2([2, 2, 2], [12, 24, 48, 96, 256], num_classes=10), 96),
    "squeezenet1_1": (small_squeezenet, 96),
    "densenet": (lambda: densenet.DenseNet(8, (2, 2, 2, 2), 16, num_classes=10), 96),
    "googlenet": (small_googlenet, 96),
    "convnext": (small_convnext, 96),
    "mnasnet": (lambda: mnasnet.MNASNet(0.25, num_classes=10), 96),
    "unet": (UNet, 64),
    "lraspp_mobilenet_v3": (small_lraspp, 96),
    "yolox": (YoloX, 128),
}

FULL = {
    "resnet18": (lambda: torchvision.models.resnet18(), 224),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), 224),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(), 224),
    "mobilenet_v3_large": (lambda: torchvision.models.mobilenet_v3_large(), 224),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(), 224),
    "regnet_y_400mf": (lambda: torchvision.models.regnet_y_400mf(), 224),
    "shufflenet_v2": (lambda: torchvision.models.shufflenet_v2_x1_0(), 224),
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(), 224),
    "densenet121": (lambda: torchvision.models.densenet121(), 224),
    "googlenet": (lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True), 224),
    "convnext_tiny": (lambda: torchvision.models.convnext_tiny(), 224),
    "mnasnet1_0": (lambda: torchvision.models.mnasnet1_0(), 224),
    "unet": (lambda: UNet(width=32), 256),
    "lraspp_mobilenet_v3": (lambda: Segmentation(segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)), 320),
    "yolox_s": (lambda: YoloX(width=32, classes=80), 640),
}


def randomize(model, seed):
    """Seeded weights, and BatchNorm statistics away from 0 and 1 so folding them is tested."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def spatial_values(path, input_name, x):
    """Values of the model with a (1, C, h, w) shape, h and w below the input's, in graph order."""
    model = onnx.load(path)
    for info in model.graph.input:
        if info.name == input_name:
            for dim, size in zip(info.type.tensor_type.shape.dim, x.shape):
                dim.dim_value = size
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for info in inferred.graph.value_info:
        dims = [d.dim_value for d in info.type.tensor_type.shape.dim]
        shapes[info.name] = dims
    names = []
    for node in model.graph.node:
        for out in node.output:
            s = shapes.get(out)
            if s and len(s) == 4 and s[0] == 1 and s[2] > 1 and node.op_type in ("Relu", "Clip", "Add", "Concat", "Mul", "HardSwish", "Sigmoid", "Conv", "MaxPool"):
                names.append((out, s))
    if not names:
        return []
    # One early and one late layer.
    return [names[len(names) // 4][0], names[(3 * len(names)) // 4][0]]


def write(name, folder, model_path, x, source):
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(model_path, os.path.join(folder, "model.onnx"))
    np.save(os.path.join(folder, "input.npy"), x)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    outputs = session.run(None, {input_name: x})
    for k, y in enumerate(outputs):
        np.save(os.path.join(folder, f"output_{k}.npy"), y)
    return {"name": name, "source": source, "input": input_name, "input_shape": list(x.shape),
            "outputs": [o.name for o in session.get_outputs()], "layers": spatial_values(model_path, input_name, x),
            "rtol": 1e-3, "atol_of_range": 1e-4}


def ppocr(work):
    """PP-OCR's trained direction classifier and recognizer, from the rapidocr_onnxruntime wheel."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "rapidocr_onnxruntime==1.4.4", "-d", work],
                   check=True, capture_output=True)
    wheel = glob.glob(os.path.join(work, "rapidocr_onnxruntime-*.whl"))[0]
    found = {}
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            for key, part in (("ppocr_cls", "cls_infer.onnx"), ("ppocr_rec", "rec_infer.onnx")):
                if member.endswith(part):
                    found[key] = archive.extract(member, work)
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", metavar="OUT", help="write the full-size models here instead")
    parser.add_argument("--only", action="append", help="only these models")
    args = parser.parse_args()
    out = args.full or os.path.join(ROOT, "Tests", "Fixtures", "model-corpus")
    table = FULL if args.full else SMALL
    index_path = os.path.join(out, "index.json")
    kept = json.load(open(index_path))["models"] if args.only and os.path.exists(index_path) else []
    rows = []
    work = tempfile.mkdtemp()
    for seed, (name, (make, size)) in enumerate(table.items()):
        if args.only and name not in args.only:
            continue
        model = randomize(make(), seed)
        x = np.random.default_rng(seed).standard_normal((1, 3, size, size)).astype(np.float32)
        path = os.path.join(work, name + ".onnx")
        with torch.no_grad():
            torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=False, opset_version=17,
                              input_names=["input"], output_names=["output"])
        rows.append(write(name, os.path.join(out, name), path, x, f"torch {torch.__version__} / torchvision "
                          f"{torchvision.__version__}, seeded random weights, opset 17"))
        print(name, "ok", flush=True)
    if not args.only or any(n.startswith("ppocr") for n in args.only):
        shapes = {"ppocr_cls": (1, 3, 48, 192), "ppocr_rec": (1, 3, 48, 320)}
        for name, path in ppocr(work).items():
            if args.only and name not in args.only:
                continue
            if name == "ppocr_rec" and not args.full:
                continue  # 10.9 MB: checked by Benchmarks/models.py, not kept in the repository
            x = np.random.default_rng(len(table)).uniform(-1, 1, shapes[name]).astype(np.float32)
            rows.append(write(name, os.path.join(out, name), path, x, "rapidocr_onnxruntime 1.4.4 wheel (PaddleOCR "
                              "trained model, Apache-2.0)"))
            print(name, "ok", flush=True)
    names = {r["name"] for r in rows}
    rows = [r for r in kept if r["name"] not in names] + rows
    with open(index_path, "w") as f:
        json.dump({"models": rows}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
