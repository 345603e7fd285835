"""dispatchflow.platform.store."""
