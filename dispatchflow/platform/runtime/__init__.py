"""dispatchflow.platform.runtime."""
