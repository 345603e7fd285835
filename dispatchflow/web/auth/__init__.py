"""dispatchflow.web.auth."""
