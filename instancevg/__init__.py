"""InstanceVG-edge: generalized visual grounding (GREC + GRES) for edge and desktop GPUs.

``InstanceVG.from_pretrained().ground(image, text)`` returns a :class:`GroundingResult` with
every referred instance (zero, one or many) or an explicit no-target answer.
"""
from .runtime.result import GroundingResult

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: importing the package must not import torch for users of instancevg.runtime.
    if name == "InstanceVG":
        from .api import InstanceVG

        return InstanceVG
    if name == "InstanceVGError":  # base class of every exception the package defines
        from .runtime.errors import InstanceVGError

        return InstanceVGError
    raise AttributeError(name)


__all__ = ["GroundingResult", "InstanceVG", "InstanceVGError", "__version__"]
