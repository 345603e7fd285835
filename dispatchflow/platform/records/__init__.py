"""dispatchflow.platform.records."""
