"""What a model reads: its declared input spec."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    """The inputs a model declares, saved with every checkpoint.

    Attributes:
        kinds: the input kinds it reads, by registered name (``stamps``, ``lightcurve``,
            ``heatmap``); each kind's encoder fills its own named tensors of a batch.
        stamp_size: side of the stamps, pixels (the stamps are checked against it; the
            photometry of the other kinds is measured on stamps of any size).
        max_frames: most frames of a sequence (a longer one keeps its central frames).
        heatmap_shape: (wavelength, time) bins of a light-curve heatmap (models reading
            the ``heatmap`` kind; None for the others).
    """

    kinds: tuple[str, ...]
    stamp_size: int = 32
    max_frames: int = 99
    heatmap_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.kinds:
            raise ValueError("a model reads at least one input kind")
        if ("heatmap" in self.kinds) != (self.heatmap_shape is not None):
            raise ValueError("a heatmap shape goes with the heatmap input, and only with it")
        sizes = {"stamp_size": self.stamp_size, "max_frames": self.max_frames}
        if self.heatmap_shape is not None:
            sizes.update(zip(("wavelength bins", "time bins"), self.heatmap_shape, strict=True))
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "kinds": list(self.kinds),
            "stamp_size": self.stamp_size,
            "max_frames": self.max_frames,
            "heatmap_shape": None if self.heatmap_shape is None else list(self.heatmap_shape),
        }

    @classmethod
    def from_dict(cls, d: dict) -> InputSpec:
        """Inverse of to_dict."""
        shape = d["heatmap_shape"]
        if shape is not None and (isinstance(shape, str) or len(shape) != 2):
            raise ValueError(f"heatmap_shape {shape!r} is not (wavelength, time)")
        return cls(
            tuple(str(k) for k in d["kinds"]),
            int(d["stamp_size"]),
            int(d["max_frames"]),
            None if shape is None else (int(shape[0]), int(shape[1])),
        )
