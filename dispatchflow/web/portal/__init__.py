"""dispatchflow.web.portal."""
