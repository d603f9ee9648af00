"""`unitrack-synth` (= `unitrack synth`): the `synth` verb's Hydra app; its code is `unitrack.commands.synth`."""

from unitrack.apps import hydra_app

main = hydra_app("synth")

if __name__ == "__main__":
    main()
