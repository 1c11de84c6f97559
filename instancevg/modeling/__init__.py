"""The network (``torch.nn.Module`` s only): EfficientNet-Lite backbone (Lite0 by default), MiniLM text encoder,
language-guided fusion and FPN, pixel decoder, adaptive query selection with reference points,
deformable decoder and the shared heads, composed by :class:`.model.InstanceVGModel`
(docs/DESIGN.md "Network")."""
