"""`unitrack-train` (= `unitrack train`): the `train` verb's Hydra app; its code is `unitrack.commands.train`."""

from unitrack.apps import hydra_app

main = hydra_app("train")

if __name__ == "__main__":
    main()
