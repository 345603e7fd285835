"""dispatchflow.platform.intake."""
