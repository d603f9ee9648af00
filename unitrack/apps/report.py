"""`unitrack-report` (= `unitrack report`): the `report` verb's Hydra app; its code is `unitrack.commands.report`."""

from unitrack.apps import hydra_app

main = hydra_app("report")

if __name__ == "__main__":
    main()
