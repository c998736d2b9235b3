#!/usr/bin/env python3
"""Regenerates the expected outputs the Swift tests compare against.

The references are independent decoders: Pillow and OpenCV (each with its own
bundled libpng / libjpeg-turbo) and NumPy. Run from the repository root:

    pip install numpy pillow opencv-python-headless
    python3 Tests/Fixtures/make_fixtures.py

The tests never run this script; they read what it wrote.
"""
import io
import json
import os
import struct
import sys

import cv2
import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(ROOT, "..", "..", "SampleImages")


def png_header(path):
    with open(path, "rb") as f:
        data = f.read()
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    has_trns = b"tRNS" in data
    return depth, color, has_trns


def pil_pixels(path):
    """Pixels as PIL gives them, expanded to gray, gray+alpha, RGB or RGBA."""
    depth, color, has_trns = png_header(path)
    image = Image.open(path)
    if color == 3:  # palette
        mode = "RGBA" if has_trns else "RGB"
    elif color == 0:
        mode = "LA" if has_trns else ("I;16" if depth == 16 else "L")
    elif color == 4:
        mode = "LA"
    elif color == 2:
        mode = "RGBA" if has_trns else "RGB"
    else:
        mode = "RGBA"
    if mode == "I;16":
        array = np.array(image).astype(np.uint16)
    else:
        array = np.array(image.convert(mode))
    if array.ndim == 2:
        array = array[:, :, None]
    return array.astype(np.uint8) if array.dtype != np.uint16 else array


def cv2_pixels_16(path):
    """16-bit colour pixels from OpenCV (PIL keeps only the high byte), as RGB(A)."""
    depth, color, has_trns = png_header(path)
    array = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    if channels == 3:
        array = array[:, :, ::-1]
    elif channels == 4:
        array = array[:, :, [2, 1, 0, 3]]
    if color in (0, 4):  # gray(+alpha): OpenCV widens to BGR(A); keep gray and alpha
        array = array[:, :, [0, 3]] if array.shape[2] == 4 else array[:, :, :1]
    return np.ascontiguousarray(array)


def png_suite():
    out = os.path.join(ROOT, "pngsuite", "expected")
    os.makedirs(out, exist_ok=True)
    manifest = {}
    folder = os.path.join(ROOT, "pngsuite", "valid")
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        depth, color, has_trns = png_header(path)
        if depth == 16 and color == 0 and has_trns:
            # OpenCV ignores tRNS here and PIL's convert("LA") zeroes every
            # alpha, so apply the PNG rule to PIL's 16-bit gray: the keyed
            # value is transparent, every other one opaque.
            image = Image.open(path)
            gray = np.array(image).astype(np.uint16)
            alpha = np.where(gray == image.info["transparency"], 0, 65535).astype(np.uint16)
            expected = np.stack([gray, alpha], axis=2)
            source = "pil+tRNS rule"
        elif depth == 16 and (color != 0 or has_trns):
            expected = cv2_pixels_16(path)
            # Cross-check: PIL's 8-bit view must be the high byte of OpenCV's.
            pil = np.array(Image.open(path).convert("RGBA" if expected.shape[2] in (2, 4) else "RGB"))
            high = (expected >> 8).astype(np.uint8)
            if expected.shape[2] == 2:
                high = np.concatenate([np.repeat(high[:, :, :1], 3, axis=2), high[:, :, 1:]], axis=2)
            if expected.shape[2] == 4 or expected.shape[2] == 3:
                pass
            if pil.shape == high.shape and not np.array_equal(pil, high):
                print(f"note: {name}: PIL 8-bit view differs from OpenCV high byte", file=sys.stderr)
            source = "opencv"
        else:
            expected = pil_pixels(path)
            source = "pil"
        np.save(os.path.join(out, name.replace(".png", ".npy")), expected)
        manifest[name] = {"reference": source, "shape": list(expected.shape), "dtype": str(expected.dtype)}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


def jpeg_cases():
    folder = os.path.join(ROOT, "jpeg")
    out = os.path.join(folder, "expected")
    os.makedirs(out, exist_ok=True)
    astronaut = np.array(Image.open(os.path.join(SAMPLES, "astronaut.png")).convert("RGB"))
    small = np.ascontiguousarray(astronaut[100:148:2, 180:260:2])  # 24 x 40, not square
    gray = np.array(Image.open(os.path.join(SAMPLES, "camera.png")).convert("L"))[200:264, 200:296]

    # Generated files: progressive, gray, CMYK, and every EXIF orientation.
    Image.fromarray(small).save(os.path.join(folder, "progressive.jpg"), quality=90, progressive=True)
    Image.fromarray(gray).save(os.path.join(folder, "gray.jpg"), quality=90)
    Image.fromarray(small).convert("CMYK").save(os.path.join(folder, "cmyk.jpg"), quality=90)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(small).save(os.path.join(folder, f"orientation{orientation}.jpg"),
                                    quality=90, exif=exif.tobytes())

    manifest = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".jpg") or name == "monkey12.jpg":
            continue
        path = os.path.join(folder, name)
        data = np.frombuffer(open(path, "rb").read(), np.uint8)
        stored_mode = Image.open(path).mode
        if stored_mode == "L":
            expected = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)[:, :, None]
            pil = np.array(Image.open(path))[:, :, None]
        else:
            expected = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]
            pil = np.array(Image.open(path).convert("RGB"))
        # OpenCV applies EXIF orientation; PIL does not, so compare PIL only
        # where nothing is turned, and never for CMYK (PIL does not invert).
        if not name.startswith("orientation") or name == "orientation1.jpg":
            if stored_mode != "CMYK":
                assert np.array_equal(expected, pil), f"PIL and OpenCV disagree on {name}"
        unturned = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        np.save(os.path.join(out, name.replace(".jpg", ".npy")), np.ascontiguousarray(expected))
        if name.startswith("orientation"):
            np.save(os.path.join(out, name.replace(".jpg", "-stored.npy")),
                    np.ascontiguousarray(unturned[:, :, ::-1]))
        manifest[name] = {"reference": "opencv" if stored_mode == "CMYK" or name.startswith("orientation")
                          else "opencv+pil", "shape": list(expected.shape)}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


def gray_conversion():
    out = os.path.join(ROOT, "conversion")
    os.makedirs(out, exist_ok=True)
    rgb = np.array(Image.open(os.path.join(SAMPLES, "coffee.png")).convert("RGB"))[:64, :96]
    np.save(os.path.join(out, "coffee-rgb8.npy"), np.ascontiguousarray(rgb))
    np.save(os.path.join(out, "coffee-gray8.npy"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None])
    rgb16 = (rgb.astype(np.uint16) * 257) ^ np.arange(rgb.size, dtype=np.uint16).reshape(rgb.shape) % 251
    np.save(os.path.join(out, "coffee-rgb16.npy"), np.ascontiguousarray(rgb16))
    np.save(os.path.join(out, "coffee-gray16.npy"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2GRAY)[:, :, None])
    rgbf = rgb.astype(np.float32) / 255
    np.save(os.path.join(out, "coffee-grayf.npy"), cv2.cvtColor(rgbf, cv2.COLOR_RGB2GRAY)[:, :, None])


def npy_files():
    """Arrays whose values the tests recompute: arange(n) cast to the dtype."""
    out = os.path.join(ROOT, "npy")
    os.makedirs(out, exist_ok=True)
    cases = {
        "f4_2x3": ("<f4", (2, 3)), "f2_4": ("<f2", (4,)), "f8_2x2x2": ("<f8", (2, 2, 2)),
        "u1_3x4x3": ("|u1", (3, 4, 3)), "u2_5x1": ("<u2", (5, 1)), "i4_6": ("<i4", (6,)),
        "i8_2x3": ("<i8", (2, 3)), "b1_7": ("|b1", (7,)), "f4_scalar": ("<f4", ()),
        "f4_empty": ("<f4", (0, 3)), "f4_rank5": ("<f4", (1, 2, 1, 3, 2)),
        "f4_wide": ("<f4", (1234567, 0)),
    }
    manifest = {}
    for name, (descr, shape) in cases.items():
        n = int(np.prod(shape)) if shape else 1
        values = np.arange(n) % 2 == 1 if descr == "|b1" else np.arange(n)
        array = values.astype(np.dtype(descr)).reshape(shape)
        np.save(os.path.join(out, name + ".npy"), array)
        manifest[name] = {"descr": descr, "shape": list(shape)}
    # Not what numpy.save writes by default, but what numpy.load reads.
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    np.save(os.path.join(out, "big_endian_f4_2x3.npy"), big)
    with open(os.path.join(out, "v2_f4_2x3.npy"), "wb") as f:
        np.lib.format.write_array(f, np.arange(6, dtype="<f4").reshape(2, 3), version=(2, 0))
    np.save(os.path.join(out, "fortran_f4_2x3.npy"), np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


def filters():
    """Filter outputs from OpenCV (and SciPy for the Laplacian of Gaussian)
    on float32 crops of the sample photos, raw 0-255 values."""
    import scipy.ndimage as ndi

    out = os.path.join(ROOT, "filters")
    os.makedirs(out, exist_ok=True)
    rgb = np.array(Image.open(os.path.join(SAMPLES, "astronaut.png")).convert("RGB"))[60:108, 180:244]
    rgb = np.ascontiguousarray(rgb.astype(np.float32))  # 48 x 64 x 3
    gray = np.array(Image.open(os.path.join(SAMPLES, "camera.png")))[100:141, 220:259].astype(np.float32)
    gray = np.ascontiguousarray(gray[:, :, None])  # 41 x 39 x 1, odd sizes
    np.save(os.path.join(out, "input-rgb.npy"), rgb)
    np.save(os.path.join(out, "input-gray.npy"), gray)

    F = cv2.CV_32F
    R101, REP, REF = cv2.BORDER_REFLECT_101, cv2.BORDER_REPLICATE, cv2.BORDER_REFLECT

    def hwc(a, like):
        return a.reshape(like.shape[0], like.shape[1], -1).astype(np.float32) if a.ndim == 2 else a.astype(np.float32)

    def padded(img, pad, fn, **np_pad):
        """fn on the image padded by numpy, cropped back: for borders OpenCV lacks."""
        big = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), **np_pad)
        result = fn(np.ascontiguousarray(big))
        return result[pad:-pad, pad:-pad]

    prewitt_x = np.array([[-1, 0, 1]] * 3, np.float32)
    k3 = np.array([[1, 2, 0], [0, 1, -1], [3, 0, 1]], np.float32)
    k5 = np.arange(25, dtype=np.float32).reshape(5, 5) % 7 - 3
    k5[2, 2] = 5
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    dilated = np.zeros((5, 5), np.float32)
    dilated[::2, ::2] = sobel_x

    def strided(full, k, s=2):
        """Stride s with SAME_UPPER padding keeps the kernel centres at
        s*i - begin + (k-1)/2, begin = total // 2 (TF/ONNX convention)."""
        def starts(n):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            return (k - 1) // 2 - total // 2
        return full[starts(full.shape[0])::s, starts(full.shape[1])::s]

    def per_channel(img, fn):
        return np.stack([fn(img[:, :, c]) for c in range(img.shape[2])], axis=2)

    cases = {
        "sobel-dx": ("sobel:dx", lambda i: cv2.Sobel(i, F, 1, 0)),
        "sobel-dy": ("sobel:dy", lambda i: cv2.Sobel(i, F, 0, 1)),
        "sobel-dx2-k5": ("sobel:dx=2,dy=0,ksize=5", lambda i: cv2.Sobel(i, F, 2, 0, ksize=5)),
        "sobel-dxdy-k7": ("sobel:dx=1,dy=1,ksize=7", lambda i: cv2.Sobel(i, F, 1, 1, ksize=7)),
        "sobel-dx-k1": ("sobel:dx,ksize=1", lambda i: cv2.Sobel(i, F, 1, 0, ksize=1)),
        "sobel-dy-scale": ("sobel:dy,scale=0.125", lambda i: cv2.Sobel(i, F, 0, 1, scale=0.125)),
        "sobel-dx-replicate": ("sobel:dx,border=replicate", lambda i: cv2.Sobel(i, F, 1, 0, borderType=REP)),
        "sobel-dy-reflect": ("sobel:dy,border=reflect", lambda i: cv2.Sobel(i, F, 0, 1, borderType=REF)),
        "sobel-dx-constant0": ("sobel:dx,border=constant", lambda i: cv2.Sobel(i, F, 1, 0, borderType=cv2.BORDER_CONSTANT)),
        "sobel-dy-constant7": ("sobel:dy,border=constant:7",
                               lambda i: padded(i, 3, lambda p: hwc(cv2.Sobel(p, F, 0, 1), p), mode="constant", constant_values=7)),
        "sobel-dx-wrap": ("sobel:dx,border=wrap", lambda i: padded(i, 3, lambda p: hwc(cv2.Sobel(p, F, 1, 0), p), mode="wrap")),
        "sobel-mag": ("sobel:mag", lambda i: cv2.magnitude(cv2.Sobel(i, F, 1, 0), cv2.Sobel(i, F, 0, 1))),
        "sobel-mag-k5": ("sobel:mag,ksize=5", lambda i: cv2.magnitude(cv2.Sobel(i, F, 1, 0, ksize=5), cv2.Sobel(i, F, 0, 1, ksize=5))),
        "sobel-dir": ("sobel:dir", lambda i: np.mod(np.arctan2(cv2.Sobel(i, F, 0, 1).astype(np.float64),
                                                               cv2.Sobel(i, F, 1, 0).astype(np.float64)), 2 * np.pi)),
        "sobel-dx-stride2": ("sobel:dx,stride=2", lambda i: strided(hwc(cv2.Sobel(i, F, 1, 0), i), 3)),
        "sobel-dx-dilation2": ("sobel:dx,dilation=2", lambda i: cv2.filter2D(i, F, dilated)),
        "scharr-dx": ("scharr:dx", lambda i: cv2.Scharr(i, F, 1, 0)),
        "scharr-dy": ("scharr:dy", lambda i: cv2.Scharr(i, F, 0, 1)),
        "scharr-mag": ("scharr:mag", lambda i: cv2.magnitude(cv2.Scharr(i, F, 1, 0), cv2.Scharr(i, F, 0, 1))),
        "prewitt-dx": ("prewitt:dx", lambda i: cv2.filter2D(i, F, prewitt_x)),
        "gaussian-s1.5": ("gaussian:sigma=1.5", lambda i: cv2.GaussianBlur(i, (0, 0), 1.5)),
        "gaussian-s2-reflect": ("gaussian:sigma=2,border=reflect", lambda i: cv2.GaussianBlur(i, (0, 0), 2, borderType=REF)),
        "gaussian-k7": ("gaussian:ksize=7", lambda i: cv2.GaussianBlur(i, (7, 7), 0)),
        "gaussian-k5-s3": ("gaussian:ksize=5,sigma=3", lambda i: cv2.GaussianBlur(i, (5, 5), 3)),
        "gaussian-s1-sy3": ("gaussian:sigma=1,sigma_y=3", lambda i: cv2.GaussianBlur(i, (0, 0), 1, sigmaY=3)),
        "gaussian-s1-stride2": ("gaussian:sigma=1,stride=2", lambda i: strided(hwc(cv2.GaussianBlur(i, (0, 0), 1), i), 9)),
        "box-5": ("box:size=5", lambda i: cv2.blur(i, (5, 5))),
        "box-3x7": ("box:width=3,height=7", lambda i: cv2.blur(i, (3, 7))),
        "laplacian": ("laplacian", lambda i: cv2.Laplacian(i, F)),
        "laplacian-k3": ("laplacian:ksize=3", lambda i: cv2.Laplacian(i, F, ksize=3)),
        "laplacian-k5-replicate": ("laplacian:ksize=5,border=replicate", lambda i: cv2.Laplacian(i, F, ksize=5, borderType=REP)),
        "log-s2": ("log:sigma=2", lambda i: per_channel(i.astype(np.float64),
                                                        lambda c: ndi.gaussian_laplace(c, 2, mode="mirror"))),
        "log-s1-reflect": ("log:sigma=1,border=reflect",
                           lambda i: per_channel(i.astype(np.float64), lambda c: ndi.gaussian_laplace(c, 1, mode="reflect"))),
        "dog-s1": ("dog:sigma=1", lambda i: cv2.GaussianBlur(i, (0, 0), 1) - cv2.GaussianBlur(i, (0, 0), 1.6)),
        "unsharp-s1-a1.5": ("unsharp:sigma=1,amount=1.5", lambda i: i * 2.5 - 1.5 * hwc(cv2.GaussianBlur(i, (0, 0), 1), i)),
        "kernel-3x3": ("kernel:1,2,0;0,1,-1;3,0,1", lambda i: cv2.filter2D(i, F, k3)),
        "kernel-5x5-wrap": ("kernel:" + ";".join(",".join(str(int(v)) for v in r) for r in k5) + ",border=wrap",
                            lambda i: padded(i, 4, lambda p: hwc(cv2.filter2D(p, F, k5), p), mode="wrap")),
        "separable": ("separable:1,2,1;-1,0,1", lambda i: cv2.sepFilter2D(i, F, np.float32([1, 2, 1]), np.float32([-1, 0, 1]))),
    }
    manifest = {}
    for source, image in (("rgb", rgb), ("gray", gray)):
        for name, (spec, fn) in cases.items():
            if source == "gray" and name not in ("sobel-dx", "sobel-mag", "gaussian-s1.5", "laplacian-k3",
                                                  "kernel-3x3", "log-s2", "sobel-dx-stride2", "box-3x7"):
                continue
            result = hwc(np.asarray(fn(image)), image)
            file = f"{source}-{name}.npy"
            np.save(os.path.join(out, file), np.ascontiguousarray(result.astype(np.float32)))
            manifest[file] = {"input": f"input-{source}.npy", "filter": spec}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


def npz_files():
    """Weights for a small network, as numpy.savez and savez_compressed write them."""
    out = os.path.join(ROOT, "npz")
    os.makedirs(out, exist_ok=True)
    weights = {"conv1.weight": (np.arange(108, dtype=np.float32).reshape(4, 3, 3, 3) - 54) / 100,
               "conv1.bias": np.array([0.5, -0.25, 0, 1], np.float32)}
    np.savez(os.path.join(out, "weights.npz"), **weights)
    np.savez_compressed(os.path.join(out, "weights_compressed.npz"), **weights)


def hypercolumns():
    """The hypercolumn reference pipeline: a small CNN run in ONNX Runtime,
    each map resized with cv2.resize INTER_LINEAR, concatenated with NumPy;
    and the filter bank's full-resolution layers computed with SciPy."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
    from scipy import ndimage as ndi

    out = os.path.join(ROOT, "hypercolumns")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)

    def weight(name, shape):
        fan_in = int(np.prod(shape[1:]))
        values = (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)
        return helper.make_tensor(name, TensorProto.FLOAT, shape, values.ravel())

    def conv(name, x, cin, cout, stride=1):
        return (helper.make_node("Conv", [x, name + ".w", name + ".b"], [name + ".conv"], kernel_shape=[3, 3],
                                 pads=[1, 1, 1, 1], strides=[stride, stride]),
                [weight(name + ".w", [cout, cin, 3, 3]), weight(name + ".b", [cout])])

    nodes, inits = [], []
    for name, x, cin, cout, stride in [("block1", "image", 3, 8, 1), ("block2", "pool", 8, 12, 1), ("block3", "block2", 12, 16, 2)]:
        node, w = conv(name, x, cin, cout, stride)
        nodes += [node, helper.make_node("Relu", [name + ".conv"], [name])]
        inits += w
        if name == "block1":
            nodes.append(helper.make_node("MaxPool", ["block1"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("GlobalAveragePool", ["block3"], ["pooled"]))
    layers = ["block1", "block2", "block3", "pooled"]
    graph = helper.make_graph(nodes, "hypercolumn_net",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, None, None])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, None, None, None]) for n in layers], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "net.onnx"))

    image = cv2.resize(cv2.imread(os.path.join(SAMPLES, "astronaut.png")), (61, 47), interpolation=cv2.INTER_AREA)
    cv2.imwrite(os.path.join(out, "input.png"), image)
    rgb = cv2.cvtColor(cv2.imread(os.path.join(out, "input.png")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    session = ort.InferenceSession(os.path.join(out, "net.onnx"), providers=["CPUExecutionProvider"])
    maps = session.run(layers, {"image": rgb.transpose(2, 0, 1)[None]})
    h, w = rgb.shape[:2]
    columns = []
    for m in maps:
        hwc = np.ascontiguousarray(m[0].transpose(1, 2, 0))
        resized = cv2.resize(hwc, (w, h), interpolation=cv2.INTER_LINEAR)
        columns.append(resized.reshape(h, w, -1))
    np.save(os.path.join(out, "expected.npy"), np.concatenate(columns, axis=2).astype(np.float32))

    # The filter bank on a gray crop: SciPy's own Gaussian (mirror border =
    # REFLECT_101, truncated at 3 sigma) and the same central differences.
    gray = cv2.cvtColor(cv2.imread(os.path.join(SAMPLES, "camera.png")), cv2.COLOR_BGR2GRAY)[100:164, 200:280]
    cv2.imwrite(os.path.join(out, "gray.png"), gray)
    g = gray.astype(np.float64) / 255
    stencils = {
        "dx": np.array([[0, 0, 0], [-0.5, 0, 0.5], [0, 0, 0]]), "dy": np.array([[0, -0.5, 0], [0, 0, 0], [0, 0.5, 0]]),
        "dxx": np.array([[0, 0, 0], [1, -2, 1], [0, 0, 0]]), "dyy": np.array([[0, 1, 0], [0, -2, 0], [0, 1, 0]]),
        "dxy": np.array([[0.25, 0, -0.25], [0, 0, 0], [-0.25, 0, 0.25]]),
    }
    for sigma in [0.7, 1.0, 1.6]:
        smooth = ndi.gaussian_filter(g, sigma, mode="mirror", truncate=np.ceil(3 * sigma) / sigma)
        d = {k: ndi.correlate(smooth, v, mode="mirror") for k, v in stencils.items()}
        gradient = sigma * np.hypot(d["dx"], d["dy"])
        laplacian = sigma ** 2 * (d["dxx"] + d["dyy"])
        extra = sigma * np.sqrt(1.6 ** 2 - 1)
        dog = smooth - ndi.gaussian_filter(smooth, extra, mode="mirror", truncate=np.ceil(3 * extra) / extra)
        m = (d["dxx"] + d["dyy"]) / 2
        r = np.sqrt(((d["dxx"] - d["dyy"]) / 2) ** 2 + d["dxy"] ** 2)
        features = np.stack([smooth, gradient, laplacian, dog, sigma ** 2 * (m + r), sigma ** 2 * (m - r)], axis=2)
        np.save(os.path.join(out, f"filterbank-sigma{sigma:.1f}.npy"), features.astype(np.float32))


if __name__ == "__main__":
    png_suite()
    jpeg_cases()
    gray_conversion()
    npy_files()
    filters()
    npz_files()
    hypercolumns()
    print("fixtures written; Pillow", Image.__version__ if hasattr(Image, "__version__") else "",
          "OpenCV", cv2.__version__, "NumPy", np.__version__)
