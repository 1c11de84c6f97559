"""``Decision``: how raw query outputs become an answer, one frozen value with one set of defaults.

The PyTorch post-processing (``instancevg.postprocess``), the torch-free runtime
(``instancevg.runtime.postprocess``), ``ModelConfig`` (its ``score_threshold`` /
``mask_threshold`` / ``nms_iou`` / ``consistency`` fields) and a bundle's ``manifest.json``
(section ``thresholds``) all read and write this one object (docs/DESIGN.md "Post-processing").

Defaults:

* ``score`` 0.7: keep a query whose score is above it (the GREC Precision@(F1=1, IoU>=0.5)
  protocol of gRefCOCO / InstanceVG thresholds scores at 0.7).
* ``mask`` 0.5: sigmoid threshold of instance and global masks.
* ``nms_iou`` 0.7: drop a kept query whose box overlaps a higher-scoring kept box with IoU above
  it (``instancevg.runtime.nms``; 1.0 turns it off); chosen on the validation split (model card).
* ``consistency`` ``"agree"``: the box/mask rule (``instancevg.runtime.consistency``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .consistency import check_consistency_rule
from .nms import check_nms_iou
from .real_number import is_real_number

__all__ = ["Decision", "DEFAULT_DECISION", "LEGACY_MANIFEST_DEFAULTS"]

# What a manifest written before a field existed means: no duplicate suppression, no consistency rule.
LEGACY_MANIFEST_DEFAULTS = {"nms_iou": 1.0, "consistency": "off"}


def _unit_interval(value, what: str, closed: bool) -> float:
    """``value`` as a float in [0, 1] (``closed``) or (0, 1); ValueError naming ``what`` otherwise."""
    if not is_real_number(value):
        raise ValueError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not (0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0):
        raise ValueError(f"{what} must be in {'[0, 1]' if closed else '(0, 1)'}, got {value!r}")
    return value


@dataclass(frozen=True)
class Decision:
    """Thresholds and rules that turn scores, boxes and mask logits into kept instances.

    Attributes:
        score: keep a query whose score (probability, [0, 1]) is above this; in [0, 1] (1.0 keeps none).
        mask: sigmoid threshold of instance and global masks; in (0, 1) (compared in logit space).
        nms_iou: greedy box NMS among kept queries at this IoU; in (0, 1], 1.0 = off.
        consistency: box/mask rule, one of ``instancevg.runtime.consistency.CONSISTENCY_RULES``.

    Raises:
        ValueError: a field outside its range or an unknown rule, naming the field.
    """

    score: float = 0.7
    mask: float = 0.5
    nms_iou: float = 0.7
    consistency: str = "agree"

    def __post_init__(self):
        object.__setattr__(self, "score", _unit_interval(self.score, "Decision.score", closed=True))
        object.__setattr__(self, "mask", _unit_interval(self.mask, "Decision.mask", closed=False))
        object.__setattr__(self, "nms_iou", check_nms_iou(self.nms_iou, "Decision.nms_iou"))
        check_consistency_rule(self.consistency, "Decision.consistency")

    def to_manifest(self) -> dict:
        """The manifest's ``thresholds`` section: ``{"score", "mask", "nms_iou", "consistency"}``."""
        return asdict(self)

    @classmethod
    def from_manifest(cls, thresholds: dict, where: str = "manifest") -> Decision:
        """Read a manifest's ``thresholds`` section. ``score`` and ``mask`` are required; a missing
        ``nms_iou`` or ``consistency`` (bundles exported before they existed) reads as
        :data:`LEGACY_MANIFEST_DEFAULTS` (1.0: no suppression; ``off``).

        Raises:
            ValueError: not a mapping, a missing ``score`` / ``mask``, an unknown key, or a value
                out of range; the message names ``where`` and the field.
        """
        if not isinstance(thresholds, dict):
            raise ValueError(f"{where}: 'thresholds' must be an object, got {type(thresholds).__name__}")
        unknown = sorted(set(thresholds) - {"score", "mask", "nms_iou", "consistency"})
        if unknown:
            raise ValueError(f"{where}: unknown field(s) thresholds.{', thresholds.'.join(unknown)}")
        for key in ("score", "mask"):
            if key not in thresholds:
                raise ValueError(f"{where}: field 'thresholds.{key}' is missing")
        values = {**LEGACY_MANIFEST_DEFAULTS, **thresholds}
        try:
            return cls(**values)
        except ValueError as err:
            field_name, _, rest = str(err).partition(" ")  # "Decision.score must be ..."
            raise ValueError(f"{where}: field 'thresholds.{field_name.split('.')[-1]}' {rest}") from None


DEFAULT_DECISION = Decision()
