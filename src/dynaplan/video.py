"""Write RGB frames as an mp4 (imageio with its bundled ffmpeg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dynaplan.safe_files import atomic_path


def save_mp4(frames: list[np.ndarray], path: Path, fps: int = 30,
             root: Path | None = None) -> Path:
    """The frames as `path`, through a temporary file renamed over it (safe_files.py),
    inside `root` (default: the video folder's parent, the run folder)."""
    import imageio.v2 as imageio

    root = path.parent.parent if root is None else root
    with atomic_path(path, root, suffix=".mp4") as tmp:
        # macro_block_size=1 keeps odd frame sizes as they are instead of resizing
        with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(np.asarray(frame, dtype=np.uint8))  # type: ignore[attr-defined]
    return path
