"""`unitrack-bench` (= `unitrack bench`): the `bench` verb's Hydra app; its code is `unitrack.commands.bench`."""

from unitrack.apps import hydra_app

main = hydra_app("bench")

if __name__ == "__main__":
    main()
