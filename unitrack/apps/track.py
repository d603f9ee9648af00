"""`unitrack-track` (= `unitrack track`): the `track` verb's Hydra app; its code is `unitrack.commands.track`."""

from unitrack.apps import hydra_app

main = hydra_app("track")

if __name__ == "__main__":
    main()
