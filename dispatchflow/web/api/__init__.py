"""dispatchflow.web.api."""
