"""``copy-paste:INSTANCES.json[:IMAGE_DIR]``: copy-paste scenes composed from the ``train`` split of
a COCO instances file (:mod:`instancevg.data.generators.copy_paste`), with generated expressions; training
only (evaluate on ``coco:`` of the same file). ``copy-paste-groups:`` (same arguments): every scene
pastes 2-4 instances of one category, for phrases about groups."""
from __future__ import annotations

from ...config import ModelConfig
from ..dataset import CopyPasteDataset
from ..generators.copy_paste import CopyPasteComposer
from .coco import instances, instances_files, parse_instances_spec, split_images
from ..sampling import TrainSampling
from .registry import DataSpec, SourceKind, register


def _train(spec: DataSpec, config: ModelConfig, seed: int, sampling: TrainSampling, cache: dict):
    inst = instances(spec, cache)
    composer = CopyPasteComposer(split_images(inst, "train"), groups=spec.kind == "copy-paste-groups")
    return CopyPasteDataset(config, composer, inst.category_names, seed, sampling)


def _training_only(spec: DataSpec, *args, **kwargs):
    raise ValueError(f"{spec}: copy-paste scenes are for training only; evaluate on coco:{spec.path}")


for _name in ("copy-paste", "copy-paste-groups"):
    register(SourceKind(name=_name, usage=f"{_name}:INSTANCES.json[:IMAGE_DIR]", parse=parse_instances_spec,
                        train=_train, eval=_training_only, samples=_training_only, files=instances_files,
                        has_val=False))
