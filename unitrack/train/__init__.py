"""Training: the LightningModule, optimiser set-up and the serial/parallel stage loop."""
