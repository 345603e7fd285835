/*
 * dispatchflow forms: the browser side of generated forms (dispatchflow/forms/render.py).
 *
 * - visible_if / required_if: interprets the JSON trees made by
 *   dispatchflow/forms/conditions.py (no eval) against the current form values
 *   on every input/change event, with the null semantics of dsl/codegen.py:
 *   a comparison with a null operand is false, and in a boolean position null
 *   counts as false. A field without a tree (a server-only condition) is left
 *   as the server rendered it.
 * - geo: "use my location" fills <field>_lat / <field>_lng (manual entry stays possible).
 * - signature: a canvas pad (pointer events, or mouse + touch) writing a
 *   data:image/png;base64 value into the hidden input <field>; a clear button.
 * - files: data-max-size (bytes) is checked on change.
 *
 * No inline code is needed: include this file with <script src=... defer>.
 * window.dispatchflowForms exposes evaluate/coerce/init for tests.
 */
(function () {
  'use strict';

  var DURATION_UNITS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  var TAG_SPLIT = /[,\uFF0C\n]/;

  // ------------------------------------------------------------------ values

  function isNull(v) {
    return v === null || v === undefined;
  }

  function parseDuration(text) {
    var m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])\s*$/.exec(text);
    return m ? parseFloat(m[1]) * DURATION_UNITS[m[2]] : null;
  }

  /* A raw value (DOM string, context JSON) as the interpreter compares it:
   * numbers for integer/decimal/reference, seconds for durations, booleans,
   * arrays for lists, {lat, lng} for geo, strings otherwise; empty -> null. */
  function coerce(kind, raw) {
    if (isNull(raw)) return null;
    var n;
    switch (kind) {
      case 'integer':
      case 'decimal':
      case 'reference':
        if (typeof raw === 'number') return isFinite(raw) ? raw : null;
        if (typeof raw !== 'string' || raw.trim() === '') return null;
        n = Number(raw.trim());
        return isFinite(n) ? n : null;
      case 'boolean':
        if (typeof raw === 'boolean') return raw;
        if (raw === 'true') return true;
        if (raw === 'false') return false;
        return null;
      case 'duration':
        if (typeof raw === 'number') return isFinite(raw) ? raw : null;
        return typeof raw === 'string' ? parseDuration(raw) : null;
      case 'list':
        if (Array.isArray(raw)) return raw;
        if (typeof raw !== 'string') return null;
        var parts = raw.split(TAG_SPLIT).map(function (p) { return p.trim(); })
          .filter(function (p) { return p !== ''; });
        return parts.length ? parts : null;
      case 'geo':
        if (typeof raw === 'object' && typeof raw.lat === 'number' && typeof raw.lng === 'number' &&
            isFinite(raw.lat) && isFinite(raw.lng)) {
          return { lat: raw.lat, lng: raw.lng };
        }
        return null;
      case 'attachment':
        if (Array.isArray(raw)) return raw.length ? raw : null;
        return raw === '' ? null : raw;
      case 'text':
        return raw === '' ? null : raw;
      default: // string, enum, date, datetime (datetime-local text in the app's zone)
        if (typeof raw !== 'string') return raw;
        raw = raw.trim();
        return raw === '' ? null : raw;
    }
  }

  // ------------------------------------------------------------------ interpreter

  function truthy(v) {
    return v === true;
  }

  function equal(a, b) {
    var i, keys;
    if (Array.isArray(a) && Array.isArray(b)) {
      if (a.length !== b.length) return false;
      for (i = 0; i < a.length; i++) if (!equal(a[i], b[i])) return false;
      return true;
    }
    if (a && b && typeof a === 'object' && typeof b === 'object' &&
        !Array.isArray(a) && !Array.isArray(b)) {
      keys = Object.keys(a);
      if (keys.length !== Object.keys(b).length) return false;
      for (i = 0; i < keys.length; i++) {
        if (!Object.prototype.hasOwnProperty.call(b, keys[i]) || !equal(a[keys[i]], b[keys[i]])) {
          return false;
        }
      }
      return true;
    }
    return a === b;
  }

  /* x in container: list membership or substring; null when the types do not fit. */
  function member(x, container) {
    if (Array.isArray(container)) {
      return container.some(function (y) { return equal(x, y); });
    }
    if (typeof container === 'string' && typeof x === 'string') {
      return container.indexOf(x) !== -1;
    }
    return null;
  }

  function ordered(op, a, b) {
    if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) return false;
    switch (op) {
      case '<': return a < b;
      case '<=': return a <= b;
      case '>': return a > b;
      default: return a >= b;
    }
  }

  /* Evaluate a condition tree; lookup(name, kind) returns a coerced field value. */
  function evaluate(node, lookup) {
    if (node === null || typeof node !== 'object') throw new Error('bad condition node');
    if (Object.prototype.hasOwnProperty.call(node, 'lit')) return node.lit;
    if (Object.prototype.hasOwnProperty.call(node, 'dur')) return node.dur;
    if (Object.prototype.hasOwnProperty.call(node, 'field')) return lookup(node.field, node.kind);
    if (Object.prototype.hasOwnProperty.call(node, 'list')) {
      return node.list.map(function (item) { return evaluate(item, lookup); });
    }
    var args = node.args || [];
    switch (node.op) {
      case 'and':
        return truthy(evaluate(args[0], lookup)) && truthy(evaluate(args[1], lookup));
      case 'or':
        return truthy(evaluate(args[0], lookup)) || truthy(evaluate(args[1], lookup));
      case 'not':
        return !truthy(evaluate(args[0], lookup));
      case 'is null':
        return isNull(evaluate(args[0], lookup));
      case 'is not null':
        return !isNull(evaluate(args[0], lookup));
      case 'if':
        return truthy(evaluate(args[0], lookup)) ? evaluate(args[1], lookup)
          : evaluate(args[2], lookup);
      default:
        break;
    }
    var left = evaluate(args[0], lookup);
    var right = evaluate(args[1], lookup);
    if (isNull(left) || isNull(right)) return false; // a comparison with null is false
    var found;
    switch (node.op) {
      case '==': return equal(left, right);
      case '!=': return !equal(left, right);
      case '<': case '<=': case '>': case '>=': return ordered(node.op, left, right);
      case 'in':
        return member(left, right) === true;
      case 'not in':
        found = member(left, right);
        return found === false;
      case 'contains':
        return member(right, left) === true;
      default:
        throw new Error('unknown operator ' + node.op);
    }
  }

  /* The condition's truth (boolean position), or null when it cannot be evaluated. */
  function holds(tree, lookup) {
    try {
      return truthy(evaluate(tree, lookup));
    } catch (e) {
      return null;
    }
  }

  // ------------------------------------------------------------------ reading the form

  function byName(form, selector, name) {
    return Array.prototype.slice.call(form.querySelectorAll(selector + '[name="' + name + '"]'));
  }

  function readField(form, wrapper, name) {
    var widget = wrapper ? wrapper.getAttribute('data-df-widget') : 'hidden';
    var kind = wrapper ? wrapper.getAttribute('data-df-kind') : '';
    var el, checked, lat, lng, count, files, boxes;
    switch (widget) {
      case 'checkbox':
        if (kind === 'boolean') {
          el = form.querySelector('input[type="checkbox"][name="' + name + '"]');
          return el ? el.checked : null;
        }
        boxes = byName(form, 'input[type="checkbox"]', name)
          .filter(function (c) { return c.checked; })
          .map(function (c) { return c.value; });
        return boxes.length ? boxes : null;
      case 'radio':
        checked = form.querySelector('input[type="radio"][name="' + name + '"]:checked');
        return checked ? checked.value : null;
      case 'geo':
        lat = form.querySelector('[name="' + name + '_lat"]');
        lng = form.querySelector('[name="' + name + '_lng"]');
        if (!lat || !lng || lat.value.trim() === '' || lng.value.trim() === '') return null;
        return { lat: Number(lat.value), lng: Number(lng.value) };
      case 'photo':
      case 'file':
        // The interpreter only needs to know how many files there are (is null, len).
        count = byName(form, 'input[type="hidden"]', name).length;
        byName(form, 'input[type="file"]', name).forEach(function (f) {
          count += f.files ? f.files.length : 0;
        });
        files = [];
        for (var i = 0; i < count; i++) files.push('file-' + i);
        return files.length ? files : null;
      default:
        el = form.querySelector('[name="' + name + '"]');
        return el ? el.value : null;
    }
  }

  function contextOf(form) {
    try {
      return JSON.parse(form.getAttribute('data-df-context') || '{}') || {};
    } catch (e) {
      return {};
    }
  }

  function makeLookup(form, context) {
    return function (name, kind) {
      var wrapper = form.querySelector('[data-df-field="' + name + '"]');
      if (wrapper || form.querySelector('[name="' + name + '"]')) {
        return coerce(kind, readField(form, wrapper, name));
      }
      return coerce(kind, Object.prototype.hasOwnProperty.call(context, name)
        ? context[name] : null);
    };
  }

  // ------------------------------------------------------------------ applying conditions

  function parseTree(wrapper, attr) {
    var text = wrapper.getAttribute(attr);
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch (e) {
      return undefined;
    }
  }

  function setRequired(wrapper, on) {
    wrapper.querySelectorAll('[data-df-required-control]').forEach(function (el) {
      if (on) el.setAttribute('required', ''); else el.removeAttribute('required');
    });
    var mark = wrapper.querySelector('.df-required-mark');
    if (mark) mark.hidden = !on;
    wrapper.setAttribute('data-df-required-now', on ? 'true' : 'false');
  }

  /* Show/hide and (un)require the fields with conditions. A condition without a
   * tree, or one that fails, keeps the server's verdict (data-df-required-server). */
  function refresh(form, state) {
    var lookup = makeLookup(form, state.context);
    state.fields.forEach(function (entry) {
      var wrapper = entry.wrapper;
      if (entry.visible !== undefined) {
        var shown = holds(entry.visible, lookup);
        if (shown !== null) wrapper.hidden = !shown;
      }
      var required = entry.always || entry.serverRequired;
      if (entry.required !== undefined) {
        var now = holds(entry.required, lookup);
        required = entry.always || (now === null ? entry.serverRequired : now);
      }
      setRequired(wrapper, required && !wrapper.hidden);
    });
  }

  // ------------------------------------------------------------------ client-side errors

  function showError(wrapper, name, message) {
    var box = wrapper.querySelector('#' + name + '-error');
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    box.setAttribute('data-df-client', 'true');
    wrapper.classList.add('df-invalid');
    wrapper.querySelectorAll('input, select, textarea, canvas').forEach(function (el) {
      if (el.type === 'hidden') return;
      el.setAttribute('aria-invalid', 'true');
      var ids = (el.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
      if (ids.indexOf(box.id) === -1) {
        ids.push(box.id);
        el.setAttribute('aria-describedby', ids.join(' '));
      }
    });
  }

  function clearClientError(wrapper, name) {
    var box = wrapper.querySelector('#' + name + '-error');
    if (!box || box.getAttribute('data-df-client') !== 'true') return;
    box.textContent = '';
    box.hidden = true;
    box.removeAttribute('data-df-client');
    wrapper.classList.remove('df-invalid');
    wrapper.querySelectorAll('[aria-invalid]').forEach(function (el) {
      el.removeAttribute('aria-invalid');
      var ids = (el.getAttribute('aria-describedby') || '').split(/\s+/)
        .filter(function (id) { return id && id !== box.id; });
      if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
      else el.removeAttribute('aria-describedby');
    });
  }

  function initFiles(form) {
    form.querySelectorAll('input[type="file"][data-max-size]').forEach(function (input) {
      input.addEventListener('change', function () {
        var max = Number(input.getAttribute('data-max-size'));
        var wrapper = input.closest('[data-df-field]');
        var tooBig = Array.prototype.some.call(input.files || [], function (f) {
          return f.size > max;
        });
        var message = input.getAttribute('data-df-msg-too-large') || '';
        input.setCustomValidity(tooBig ? message : '');
        if (!wrapper) return;
        if (tooBig) showError(wrapper, input.name, message);
        else clearClientError(wrapper, input.name);
      });
    });
  }

  // ------------------------------------------------------------------ geo

  function initGeo(form) {
    form.querySelectorAll('button[data-df-geo]').forEach(function (button) {
      button.addEventListener('click', function () {
        var name = button.getAttribute('data-df-geo');
        var status = form.querySelector('#' + name + '-status');
        var lat = form.querySelector('[name="' + name + '_lat"]');
        var lng = form.querySelector('[name="' + name + '_lng"]');
        function say(key) {
          if (status) status.textContent = button.getAttribute('data-df-msg-' + key) || '';
        }
        if (!navigator.geolocation || !lat || !lng) {
          say('unsupported');
          return;
        }
        say('locating');
        button.disabled = true;
        navigator.geolocation.getCurrentPosition(function (position) {
          lat.value = position.coords.latitude.toFixed(6);
          lng.value = position.coords.longitude.toFixed(6);
          button.disabled = false;
          say('found');
          lat.dispatchEvent(new Event('change', { bubbles: true }));
          lng.dispatchEvent(new Event('change', { bubbles: true }));
        }, function () {
          button.disabled = false;
          say('failed');
        }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
      });
    });
  }

  // ------------------------------------------------------------------ signature

  function initSignature(form, canvas) {
    var name = canvas.getAttribute('data-df-signature');
    var input = form.querySelector('input[type="hidden"][name="' + name + '"]');
    var wrapper = canvas.closest('[data-df-field]');
    var clear = form.querySelector('[data-df-signature-clear="' + name + '"]');
    var strokes = []; // each a list of points in 0..1 canvas coordinates
    var current = null;
    var ctx = canvas.getContext && canvas.getContext('2d');
    if (!ctx || !input) return;

    function draw(target, width, height, scale, background) {
      var c = target.getContext('2d');
      c.setTransform(1, 0, 0, 1, 0, 0);
      c.clearRect(0, 0, width, height);
      if (background) {
        c.fillStyle = '#ffffff';
        c.fillRect(0, 0, width, height);
      }
      c.lineWidth = 2.5 * scale;
      c.lineCap = 'round';
      c.lineJoin = 'round';
      c.strokeStyle = '#111111';
      c.fillStyle = '#111111';
      strokes.forEach(function (stroke) {
        if (stroke.length === 1) {
          c.beginPath();
          c.arc(stroke[0].x * width, stroke[0].y * height, c.lineWidth / 2, 0, 2 * Math.PI);
          c.fill();
          return;
        }
        c.beginPath();
        c.moveTo(stroke[0].x * width, stroke[0].y * height);
        for (var i = 1; i < stroke.length; i++) c.lineTo(stroke[i].x * width, stroke[i].y * height);
        c.stroke();
      });
    }

    function ratio() {
      return window.devicePixelRatio || 1;
    }

    function redraw() {
      draw(canvas, canvas.width, canvas.height, ratio(), false);
    }

    function resize() {
      var rect = canvas.getBoundingClientRect();
      if (!rect.width || !rect.height) return;
      var w = Math.round(rect.width * ratio());
      var h = Math.round(rect.height * ratio());
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
      redraw();
    }

    function exportPng() {
      var rect = canvas.getBoundingClientRect();
      var scale = Math.min(ratio(), 2);
      var out = document.createElement('canvas');
      out.width = Math.max(1, Math.round((rect.width || canvas.width) * scale));
      out.height = Math.max(1, Math.round((rect.height || canvas.height) * scale));
      draw(out, out.width, out.height, scale, true);
      return out.toDataURL('image/png');
    }

    function point(clientX, clientY) {
      var rect = canvas.getBoundingClientRect();
      return {
        x: Math.min(1, Math.max(0, (clientX - rect.left) / (rect.width || 1))),
        y: Math.min(1, Math.max(0, (clientY - rect.top) / (rect.height || 1)))
      };
    }

    function start(x, y) {
      resize(); // the pad may have been hidden (zero-sized) when the page loaded
      current = [point(x, y)];
      strokes.push(current);
      redraw();
    }

    function move(x, y) {
      if (!current) return;
      current.push(point(x, y));
      redraw();
    }

    function end() {
      if (!current) return;
      current = null;
      input.value = exportPng();
      if (wrapper) clearClientError(wrapper, name);
      input.dispatchEvent(new Event('change', { bubbles: true }));
    }

    if (window.PointerEvent) {
      canvas.addEventListener('pointerdown', function (e) {
        if (e.pointerType === 'mouse' && e.button !== 0) return;
        e.preventDefault();
        if (canvas.setPointerCapture) canvas.setPointerCapture(e.pointerId);
        start(e.clientX, e.clientY);
      });
      canvas.addEventListener('pointermove', function (e) {
        if (!current) return;
        e.preventDefault();
        move(e.clientX, e.clientY);
      });
      canvas.addEventListener('pointerup', end);
      canvas.addEventListener('pointercancel', end);
    } else {
      canvas.addEventListener('mousedown', function (e) {
        if (e.button !== 0) return;
        e.preventDefault();
        start(e.clientX, e.clientY);
      });
      canvas.addEventListener('mousemove', function (e) { move(e.clientX, e.clientY); });
      window.addEventListener('mouseup', end);
      canvas.addEventListener('touchstart', function (e) {
        if (!e.touches.length) return;
        e.preventDefault();
        start(e.touches[0].clientX, e.touches[0].clientY);
      }, { passive: false });
      canvas.addEventListener('touchmove', function (e) {
        if (!e.touches.length) return;
        e.preventDefault();
        move(e.touches[0].clientX, e.touches[0].clientY);
      }, { passive: false });
      canvas.addEventListener('touchend', end);
      canvas.addEventListener('touchcancel', end);
    }

    if (clear) {
      clear.addEventListener('click', function () {
        strokes = [];
        current = null;
        redraw();
        input.value = '';
        input.dispatchEvent(new Event('change', { bubbles: true }));
      });
    }
    window.addEventListener('resize', resize);
    resize();
  }

  /* A signature cannot carry the "required" attribute (it is a hidden input). */
  function checkSignatures(form, event) {
    var first = null;
    form.querySelectorAll('[data-df-widget="signature"]').forEach(function (wrapper) {
      var name = wrapper.getAttribute('data-df-field');
      var input = form.querySelector('input[type="hidden"][name="' + name + '"]');
      var mark = wrapper.querySelector('.df-required-mark');
      var required = mark ? !mark.hidden : false;
      if (wrapper.hidden || !required || !input || input.value) return;
      showError(wrapper, name, wrapper.getAttribute('data-df-msg-required') || '');
      if (!first) first = wrapper.querySelector('canvas');
    });
    if (first) {
      event.preventDefault();
      first.focus();
    }
  }

  // On submit, check the constraints ourselves and put each message next to its
  // field (the browser's own bubbles vanish and are not announced reliably).
  function checkFields(form, event) {
    var first = null;
    form.querySelectorAll('[data-df-field]').forEach(function (wrapper) {
      if (wrapper.hidden || wrapper.closest('[hidden]')) return;
      var name = wrapper.getAttribute('data-df-field');
      var message = null;
      wrapper.querySelectorAll('input, select, textarea').forEach(function (el) {
        if (message !== null || el.type === 'hidden' || el.disabled) return;
        if (el.validity && !el.validity.valid) {
          message = el.validity.valueMissing
            ? (wrapper.getAttribute('data-df-msg-required') || el.validationMessage)
            : el.validationMessage;
          if (!first) first = el;
        }
      });
      if (message !== null) showError(wrapper, name, message);
      else clearClientError(wrapper, name);
    });
    if (first) {
      event.preventDefault();
      first.focus();
    }
  }

  // ------------------------------------------------------------------ wiring

  function init(form) {
    if (!form || form.getAttribute('data-df-ready') === 'true') return;
    form.setAttribute('data-df-ready', 'true');
    var state = { context: contextOf(form), fields: [] };
    form.querySelectorAll('[data-df-field]').forEach(function (wrapper) {
      var entry = {
        wrapper: wrapper,
        visible: parseTree(wrapper, 'data-df-visible-if'),
        required: parseTree(wrapper, 'data-df-required-if'),
        always: wrapper.getAttribute('data-df-always-required') === 'true',
        serverRequired: wrapper.getAttribute('data-df-required-server') === 'true'
      };
      if (entry.visible !== undefined || entry.required !== undefined) state.fields.push(entry);
    });
    var update = function () { refresh(form, state); };
    form.addEventListener('input', update);
    form.addEventListener('change', update);
    // Our own messages replace the browser's bubbles; without this script the
    // browser's validation and the server's field errors still apply.
    form.noValidate = true;
    form.addEventListener('submit', function (event) {
      checkFields(form, event);
      checkSignatures(form, event);
    });
    initFiles(form);
    initGeo(form);
    form.querySelectorAll('canvas[data-df-signature]').forEach(function (canvas) {
      initSignature(form, canvas);
    });
    update();
    var summary = form.querySelector('.df-error-summary');
    if (summary) summary.focus();
  }

  function initAll() {
    document.querySelectorAll('form[data-df-form]').forEach(init);
  }

  window.dispatchflowForms = {
    evaluate: evaluate,
    holds: holds,
    coerce: coerce,
    init: init,
    initAll: initAll
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', initAll);
  } else {
    initAll();
  }
}());
