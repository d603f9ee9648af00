"""`unitrack-inspect` (= `unitrack inspect`): the `inspect` verb's Hydra app; its code is `unitrack.commands.inspect`."""

from unitrack.apps import hydra_app

main = hydra_app("inspect")

if __name__ == "__main__":
    main()
