"""`unitrack-export` (= `unitrack export`): the `export` verb's Hydra app; its code is `unitrack.commands.export`."""

from unitrack.apps import hydra_app

main = hydra_app("export")

if __name__ == "__main__":
    main()
