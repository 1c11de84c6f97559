"""One check shared by the tests of model options that must export: ``grounder.onnx`` under ONNX
Runtime gives what the PyTorch model gives."""
import numpy as np
import torch


def assert_grounder_matches(model, bundle, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> None:
    """images (1 or B, 3, S, S), ids / mask (B, L): scores and boxes within 1e-4, existence and
    instance-mask logits within 1e-3 of ``model.ground`` on the images repeated per expression."""
    import onnxruntime as ort

    b = ids.shape[0]
    with torch.no_grad():
        feats = model.encode_text(ids, mask)
        ref = model.ground(images.expand(b, -1, -1, -1), feats, mask)
    gr = ort.InferenceSession(str(bundle / "grounder.onnx"), providers=["CPUExecutionProvider"])
    scores, boxes, inst, _, exist = gr.run(None, {"image": images.numpy(), "text_features": feats.numpy(),
                                                  "text_mask": mask.numpy()})
    np.testing.assert_allclose(exist, ref.existence.numpy(), atol=1e-3)
    np.testing.assert_allclose(scores, ref.scores.numpy(), atol=1e-4)
    np.testing.assert_allclose(boxes, ref.pred_boxes.numpy(), atol=1e-4)
    np.testing.assert_allclose(inst, ref.pred_masks.numpy(), atol=1e-3)
