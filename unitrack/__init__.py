"""unitrack: one LoRA-ViT tracker for RGB+Thermal, RGB+Depth and RGB+Event video."""

from pathlib import Path

__version__ = "0.1.0"

#: The Hydra config package: the repository's top-level conf/, installed as `unitrack.conf` (pyproject.toml).
CONFIG_MODULE = "unitrack.conf"

TASKS = ("rgbt", "rgbd", "rgbe")
#: The X modality each task pairs with RGB; also the name of that modality's LoRA expert.
X_MODALITY = {"rgbt": "thermal", "rgbd": "depth", "rgbe": "event"}
#: RGB-only single-object tracking (LaSOT, GOT-10k, TrackingNet, the synthetic RGB world): the data the
#: RGB foundation stage trains on, before any X modality is unified. Its sequences carry no X image.
RGB_TASK = "rgb"
NO_X = "none"  # the x_modality of an RGB-only sequence
#: What `train.order` may name: the multimodal tasks and the RGB foundation task.
TRAIN_TASKS = (*TASKS, RGB_TASK)


def conf_dir() -> Path:
    """The folder of the installed config package (editable install: the checkout's conf/)."""
    import importlib.util

    spec = importlib.util.find_spec(CONFIG_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{CONFIG_MODULE} is not installed: install unitrack (pip install -e . in a "
                                  "checkout, or pip install unitrack)")
    return Path(next(iter(spec.submodule_search_locations)))
