"""`unitrack-score` (= `unitrack score`): the `score` verb's Hydra app; its code is `unitrack.commands.score`."""

from unitrack.apps import hydra_app

main = hydra_app("score")

if __name__ == "__main__":
    main()
