"""dispatchflow.platform.dispatch."""
