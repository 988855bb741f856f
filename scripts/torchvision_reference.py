"""Writes torchvision checkpoints and their logits, the oracle of quant-train's checkpoint import.

usage: python3 scripts/torchvision_reference.py OUT_DIR

For ResNet-18, ResNet-50 and MobileNetV2 (width 0.5) with 10 classes, seeded random weights and
batch-norm statistics (so every imported tensor changes the output), in evaluation mode: the state
dict as `<arch>.pth` (torch.save) and `<arch>.safetensors`, two 3x64x64 inputs in [0, 1] as
`input.f32` and the model's logits for them, normalized with ImageNet's channel statistics as
torchvision's models expect, as `<arch>.logits.f32` (little-endian float32). `cargo test -p quant-train --test
pretrained` compares the zoo's logits with these when QUANT_TORCH_REFERENCE names OUT_DIR.
Runs in its own virtual environment (.venv-torch, shared with bench_torch_train.py).
"""
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from script_venv import ensure_venv  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ensure_venv(os.path.join(ROOT, ".venv-torch"), ["torch", "torchvision"], "import torchvision")

import torch  # noqa: E402
import torchvision  # noqa: E402

MODELS = {
    "resnet18": lambda: torchvision.models.resnet18(num_classes=10),
    "resnet50": lambda: torchvision.models.resnet50(num_classes=10),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.5),
}


def save_safetensors(path, tensors):
    """The safetensors layout: an 8-byte little-endian header length, a JSON header naming each
    tensor's dtype, shape and byte range, then the raw little-endian bytes."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    with open(os.path.join(out, "input.f32"), "wb") as f:
        f.write(x.numpy().astype("<f4").tobytes())
    for arch, make in MODELS.items():
        model = make()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                torch.nn.init.uniform_(m.weight, 0.5, 1.5)
                torch.nn.init.normal_(m.bias, 0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        model.eval()
        state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        torch.save(model.state_dict(), os.path.join(out, f"{arch}.pth"))
        save_safetensors(os.path.join(out, f"{arch}.safetensors"), state)
        # The zoo's ImageNet models normalize their [0, 1] input themselves; torchvision's expect it
        # normalized.
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        with torch.no_grad():
            logits = model((x - mean) / std)
        with open(os.path.join(out, f"{arch}.logits.f32"), "wb") as f:
            f.write(logits.numpy().astype("<f4").tobytes())
        print(f"{arch}: {len(state)} tensors, logits {tuple(logits.shape)} written to {out}")


if __name__ == "__main__":
    main()
