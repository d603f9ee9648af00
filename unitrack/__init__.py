"""unitrack: one LoRA-ViT tracker for RGB+Thermal, RGB+Depth and RGB+Event video."""

__version__ = "0.1.0"

TASKS = ("rgbt", "rgbd", "rgbe")
#: The X modality each task pairs with RGB; also the name of that modality's LoRA expert.
X_MODALITY = {"rgbt": "thermal", "rgbd": "depth", "rgbe": "event"}
