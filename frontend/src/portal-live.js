// Live parts of portal pages (the tracking page): htmx with its Server-Sent Events
// extension. Markup only (hx-*, sse-* attributes); nothing here needs eval or inline
// styles, so the page runs under CSP script-src 'self', style-src 'self'.
import htmx from "htmx.org";
import "htmx-ext-sse";

// Set before htmx starts (on DOMContentLoaded, after this module has run).
htmx.config.includeIndicatorStyles = false; // an injected <style> breaks style-src 'self'
htmx.config.allowEval = false; // no hx-on, no js: values
htmx.config.allowScriptTags = false;
htmx.config.selfRequestsOnly = true;
