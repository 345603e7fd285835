"""Flask app factory and blueprints: api, designer, portal, console, tech, reports."""
