"""`unitrack-eval` (= `unitrack eval`): the `eval` verb's Hydra app; its code is `unitrack.commands.eval`."""

from unitrack.apps import hydra_app

main = hydra_app("eval")

if __name__ == "__main__":
    main()
