"""One module per CLI verb, each with `run(cfg)`: thin glue from a composed config to library code."""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig


def run_dir() -> Path:
    """The Hydra run (or multirun job) directory: every output of a verb goes here."""
    return Path(HydraConfig.get().runtime.output_dir)


def pick_device(device: str) -> str:
    """`auto` = cuda when available, else cpu."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
