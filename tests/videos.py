"""Short test videos made from scikit-image's photos (helpers for the loop and wheel tests)."""
import os

import cv2


def pan_video(path, n=8, size=(96, 128)):
    """Write an ``n``-frame mp4v video of a slow pan over skimage's coffee photo, (H, W) = ``size``;
    returns ``path``."""
    from skimage import data

    photo = cv2.imread(os.path.join(data.data_dir, "coffee.png"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (size[1], size[0]))
    for i in range(n):
        crop = photo[20:20 + 2 * size[0], 10 + 4 * i: 10 + 4 * i + 2 * size[1]]
        writer.write(cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_AREA))
    writer.release()
    return path
