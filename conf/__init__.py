"""unitrack's Hydra configs: this folder is installed as the package `unitrack.conf` (pyproject.toml maps it),
so every install mode finds them as `pkg://unitrack.conf`; a user's own folder joins with `--config-dir`."""
