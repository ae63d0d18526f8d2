"""Write RGB frames as an mp4 (imageio with its bundled ffmpeg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_mp4(frames: list[np.ndarray], path: Path, fps: int = 30) -> Path:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    # macro_block_size=1 keeps odd frame sizes as they are instead of resizing with a warning
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))  # type: ignore[attr-defined]
    return path
