"""dispatchflow.platform.demo."""
