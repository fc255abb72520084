// The <sd-image> web component that third-party pages embed, kept as plain browser JavaScript text (served as
// /embed.js). Dependency-free, Shadow DOM, CSP-friendly: no eval, no inline style attributes, no requests but to api-base.

/**
 * Attributes: api-base (default: the origin /embed.js was loaded from), publishable-key or token, model
 * ("owner/name[:version]"), width, height, steps, prompt (initial text), placeholder.
 * Events on the element: `sd-image:done` (detail: the prediction), `sd-image:error` (detail: { status, message }).
 * The text below needs no build step (ES2017 at most, which every browser with custom elements runs), and it
 * contains no backticks or dollar-brace so it can live inside this String.raw template.
 */
export const SD_IMAGE_ELEMENT_SOURCE = String.raw`/*! <sd-image> embed widget */
(function () {
  'use strict';
  if (typeof window === 'undefined' || !window.customElements || window.customElements.get('sd-image')) return;

  // Where this script came from: the default api-base, so a page only has to include the script and a key.
  var scriptOrigin = '';
  /** Visitor tokens when localStorage is unavailable (private mode, sandboxed frames): kept for this page only. */
  var memoryTokens = {};
  try {
    if (document.currentScript && document.currentScript.src) scriptOrigin = new URL(document.currentScript.src).origin;
  } catch (e) { /* keep empty */ }

  var CSS = [
    ':host{display:block;max-width:32rem;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f}',
    ':host([hidden]){display:none}',
    '.box{border:1px solid #d0d0d7;border-radius:10px;padding:12px;background:#fff}',
    'form{display:flex;gap:8px;align-items:stretch}',
    'textarea{flex:1;min-height:2.6em;resize:vertical;font:inherit;padding:6px 8px;border:1px solid #b8b8c2;border-radius:6px}',
    'button{font:inherit;font-weight:600;padding:0 14px;border:0;border-radius:6px;background:#3b5bdb;color:#fff;cursor:pointer}',
    'button[disabled]{background:#9aa5c9;cursor:not-allowed}',
    '.status{margin:8px 0 0;min-height:1.4em;color:#444}',
    'progress{display:block;width:100%;height:8px;margin-top:6px}',
    'progress[hidden],.error[hidden],figure[hidden]{display:none}',
    '.error{margin:8px 0 0;padding:8px 10px;border-radius:6px;background:#fff0f0;border:1px solid #f2b8b5;color:#8a1c1c}',
    'figure{margin:10px 0 0}',
    'img{display:block;max-width:100%;height:auto;border-radius:6px;background:#f3f3f6}'
  ].join('\n');

  var sharedSheet = null;
  function applyStyles(root) {
    // Constructable stylesheets are not inline styles, so a CSP without 'unsafe-inline' allows them.
    try {
      if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function') {
        if (!sharedSheet) {
          sharedSheet = new CSSStyleSheet();
          sharedSheet.replaceSync(CSS);
        }
        root.adoptedStyleSheets = [sharedSheet];
        return;
      }
    } catch (e) { /* fall through */ }
    var style = document.createElement('style');
    style.textContent = CSS;
    root.appendChild(style);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    if (text) node.textContent = text;
    return node;
  }

  function intAttr(host, name) {
    var v = host.getAttribute(name);
    if (v === null || v === '') return undefined;
    var n = Number(v);
    return Number.isInteger(n) ? n : undefined;
  }

  /** Seconds until a retry is allowed, from Retry-After (seconds or an HTTP date). */
  function retryAfterSeconds(value) {
    if (!value) return null;
    var secs = Number(value);
    if (isFinite(secs)) return Math.max(0, Math.ceil(secs));
    var at = Date.parse(value);
    return isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
  }

  function describeWait(seconds) {
    if (seconds < 60) return seconds + (seconds === 1 ? ' second' : ' seconds');
    var minutes = Math.ceil(seconds / 60);
    return minutes + (minutes === 1 ? ' minute' : ' minutes');
  }

  function safeImageUrl(url, base) {
    try {
      var u = new URL(url, base);
      return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  /** The message a person reads for a refused request; the API's own words where they help. */
  function humanError(status, body, retryAfter) {
    var err = body && body.error ? body.error : null;
    var apiMessage = (err && err.message) || (body && body.detail) || '';
    var issue = err && err.issues && err.issues.length ? err.issues[0] : null;
    if (status === 429) {
      var wait = retryAfterSeconds(retryAfter);
      return wait === null
        ? 'Too many images requested right now. Please wait a little and try again.'
        : 'Too many images requested right now. Try again in ' + describeWait(wait) + '.';
    }
    if (status === 422 || status === 400) {
      var what = issue ? issue.message : apiMessage;
      return 'This prompt can\'t be used: ' + (what || 'the request was not accepted') + '.';
    }
    if (status === 401) return 'This image generator is not set up correctly (its key was refused). Please tell the site owner.';
    if (status === 403) return 'This image generator is not allowed on this page' + (apiMessage ? ' (' + apiMessage + ')' : '') + '.';
    if (status === 404) return 'The image service could not find what it needed' + (apiMessage ? ': ' + apiMessage : '') + '.';
    if (status >= 500) return 'The image service had a problem. Please try again in a moment.';
    return apiMessage || 'The request failed (HTTP ' + status + ').';
  }

  function readJson(response) {
    return response.text().then(function (text) {
      try {
        return text ? JSON.parse(text) : null;
      } catch (e) {
        return null;
      }
    });
  }

  /** Reads a text/event-stream body and calls onEvent(name, data) per event; resolves at the end of the stream. */
  function readEventStream(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = '';
    function dispatch(block) {
      var name = 'message';
      var data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (line.indexOf('event:') === 0) name = line.slice(6).trim();
        else if (line.indexOf('data:') === 0) data.push(line.slice(5).replace(/^ /, ''));
      });
      if (data.length || name !== 'message') return onEvent(name, data.join('\n'));
      return false;
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          if (buffer.trim()) dispatch(buffer);
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        var parts = buffer.split(/\r?\n\r?\n/);
        buffer = parts.pop();
        for (var i = 0; i < parts.length; i++) {
          if (dispatch(parts[i]) === true) {
            reader.cancel().catch(function () {});
            return;
          }
        }
        return pump();
      });
    }
    return pump();
  }

  function sleep(ms, signal) {
    return new Promise(function (resolve, reject) {
      var t = setTimeout(resolve, ms);
      if (signal) signal.addEventListener('abort', function () { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); });
    });
  }

  class SdImage extends HTMLElement {}
  SdImage.observedAttributes = ['prompt', 'placeholder'];

  SdImage.prototype.connectedCallback = function () {
    if (this._ui) return;
    var root = this.attachShadow({ mode: 'open' });
    applyStyles(root);
    var box = el('div', { class: 'box', part: 'box' });
    var form = el('form', { part: 'form' });
    var input = el('textarea', {
      name: 'prompt',
      rows: '2',
      maxlength: '1000',
      'aria-label': 'Describe the image',
      placeholder: this.getAttribute('placeholder') || 'Describe the image you want'
    });
    input.value = this.getAttribute('prompt') || '';
    var button = el('button', { type: 'submit', part: 'button' }, 'Generate');
    form.appendChild(input);
    form.appendChild(button);
    var status = el('p', { class: 'status', role: 'status', 'aria-live': 'polite', part: 'status' });
    var progress = el('progress', { max: '1', value: '0', hidden: '', part: 'progress' });
    var error = el('p', { class: 'error', role: 'alert', hidden: '', part: 'error' });
    var figure = el('figure', { hidden: '' });
    var img = el('img', { alt: '', part: 'image' });
    figure.appendChild(img);
    box.appendChild(form);
    box.appendChild(status);
    box.appendChild(progress);
    box.appendChild(error);
    box.appendChild(figure);
    root.appendChild(box);
    this._ui = { form: form, input: input, button: button, status: status, progress: progress, error: error, figure: figure, img: img };
    var self = this;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      self.generate(input.value);
    });
    input.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        self.generate(input.value);
      }
    });
  };

  SdImage.prototype.disconnectedCallback = function () {
    if (this._abort) this._abort.abort();
  };

  SdImage.prototype.attributeChangedCallback = function (name, _old, value) {
    if (!this._ui) return;
    if (name === 'prompt') this._ui.input.value = value || '';
    if (name === 'placeholder') this._ui.input.setAttribute('placeholder', value || '');
  };

  SdImage.prototype._apiBase = function () {
    return (this.getAttribute('api-base') || scriptOrigin || '').replace(/\/+$/, '');
  };

  /**
   * The Bearer credential: a \`token\` attribute as given; with a \`publishable-key\`, this visitor's own visitor token
   * (POST /v1/visitor-tokens), kept in localStorage and renewed before it expires, so a visitor sees only their own
   * predictions and keeps them across page loads. Resolves to { token } or { status, message } on failure.
   */
  SdImage.prototype._credential = function (api, signal) {
    var token = this.getAttribute('token');
    if (token) return Promise.resolve({ token: token });
    var key = this.getAttribute('publishable-key') || '';
    if (!key) return Promise.resolve({ token: '' });
    var slot = 'sd-image:visitor:' + api + ':' + key.split('_')[1];
    var saved = null;
    try {
      saved = JSON.parse(window.localStorage.getItem(slot) || 'null');
    } catch (e) { saved = memoryTokens[slot] || null; }
    if (saved && saved.token && Date.parse(saved.expires_at) - Date.now() > 60000) return Promise.resolve({ token: saved.token });
    return fetch(api + '/v1/visitor-tokens', {
      method: 'POST',
      mode: 'cors',
      credentials: 'omit',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + key },
      body: JSON.stringify(saved && saved.token ? { visitor_token: saved.token } : {}),
      signal: signal
    }).then(function (response) {
      return readJson(response).then(function (json) {
        if (!response.ok) {
          // A renewal the edge refuses (e.g. the old token is too old): start over as a new visitor once.
          if (response.status === 422 && saved) {
            try { window.localStorage.removeItem(slot); } catch (e) { delete memoryTokens[slot]; }
            return { retry: true };
          }
          return { status: response.status, message: humanError(response.status, json, response.headers.get('Retry-After')) };
        }
        var record = { token: json.token, expires_at: json.expires_at };
        try { window.localStorage.setItem(slot, JSON.stringify(record)); } catch (e) { memoryTokens[slot] = record; }
        return { token: json.token };
      });
    });
  };

  SdImage.prototype._setBusy = function (busy) {
    this._ui.button.disabled = busy;
    this._ui.input.readOnly = busy;
    this.toggleAttribute('busy', busy);
  };

  SdImage.prototype._showStatus = function (text) {
    this._ui.status.textContent = text;
  };

  SdImage.prototype._showProgress = function (fraction, label) {
    var p = this._ui.progress;
    p.hidden = false;
    if (typeof fraction === 'number' && isFinite(fraction)) p.value = Math.max(0, Math.min(1, fraction));
    else p.removeAttribute('value');
    if (label) this._showStatus(label);
  };

  SdImage.prototype._fail = function (status, message) {
    var ui = this._ui;
    ui.progress.hidden = true;
    ui.error.textContent = message;
    ui.error.hidden = false;
    this._showStatus('');
    this.setAttribute('state', 'error');
    this.dispatchEvent(new CustomEvent('sd-image:error', { detail: { status: status, message: message }, bubbles: true, composed: true }));
  };

  SdImage.prototype._succeed = function (prediction, urls, prompt) {
    var ui = this._ui;
    var src = null;
    for (var i = 0; i < urls.length && !src; i++) src = safeImageUrl(urls[i], this._apiBase());
    if (!src) return this._fail(0, 'The image service finished but returned no image.');
    var self = this;
    ui.img.onload = function () {
      ui.progress.hidden = true;
      self._showStatus('Done.');
      ui.figure.hidden = false;
      self.setAttribute('state', 'succeeded');
      self.dispatchEvent(new CustomEvent('sd-image:done', { detail: prediction, bubbles: true, composed: true }));
    };
    ui.img.onerror = function () {
      self._fail(0, 'The image was generated but could not be loaded.');
    };
    ui.img.alt = prompt;
    ui.img.src = src;
  };

  /** Starts a prediction for the prompt and follows it to its image. */
  SdImage.prototype.generate = function (rawPrompt) {
    var ui = this._ui;
    var prompt = String(rawPrompt || '').trim();
    if (!ui || this.hasAttribute('busy')) return Promise.resolve();
    ui.error.hidden = true;
    if (!prompt) {
      this._fail(0, 'Please describe the image first.');
      return Promise.resolve();
    }
    var api = this._apiBase();
    if (!api) {
      this._fail(0, 'This image generator is not set up correctly (no api-base). Please tell the site owner.');
      return Promise.resolve();
    }
    if (this._abort) this._abort.abort();
    var abort = (this._abort = new AbortController());
    var signal = abort.signal;
    var self = this;
    var auth = null;
    var input = { prompt: prompt };
    var width = intAttr(this, 'width');
    var height = intAttr(this, 'height');
    var steps = intAttr(this, 'steps');
    if (width !== undefined) input.width = width;
    if (height !== undefined) input.height = height;
    if (steps !== undefined) input.num_inference_steps = steps;
    var body = { input: input };
    var model = this.getAttribute('model');
    if (model) body.version = model;

    this._setBusy(true);
    this.setAttribute('state', 'starting');
    ui.figure.hidden = true;
    this._showProgress(undefined, 'Starting…');

    return this._credential(api, signal)
      .then(function (credential) {
        return credential.retry ? self._credential(api, signal) : credential;
      })
      .then(function (credential) {
        if (!credential.token && credential.status) {
          self._fail(credential.status, credential.message);
          return { skip: true };
        }
        auth = { Authorization: 'Bearer ' + credential.token };
        return fetch(api + '/v1/predictions', {
          method: 'POST',
          mode: 'cors',
          credentials: 'omit',
          headers: Object.assign({ 'Content-Type': 'application/json' }, auth),
          body: JSON.stringify(body),
          signal: signal
        });
      })
      .then(function (response) {
        if (response.skip) return null;
        return readJson(response).then(function (json) {
          if (!response.ok) {
            var message = humanError(response.status, json, response.headers.get('Retry-After'));
            if (response.status === 429) self._holdFor(retryAfterSeconds(response.headers.get('Retry-After')));
            self._fail(response.status, message);
            return null;
          }
          return self._follow(json, auth, signal);
        });
      })
      .then(function (final) {
        if (!final) return;
        if (final.status === 'succeeded') return self._succeed(final, final.output || [], prompt);
        if (final.status === 'canceled') return self._fail(0, 'The image was canceled.');
        return self._fail(0, 'The image could not be made: ' + (final.error || 'unknown error') + '.');
      })
      .catch(function (err) {
        if (err && err.name === 'AbortError') return;
        self._fail(0, 'Could not reach the image service. Check your connection and try again.');
      })
      .then(function () {
        if (!self._holdUntil || Date.now() >= self._holdUntil) self._setBusy(false);
      });
  };

  /** After a 429: keep the button disabled until the server's retry time has passed. */
  SdImage.prototype._holdFor = function (seconds) {
    if (!seconds) return;
    var self = this;
    this._holdUntil = Date.now() + seconds * 1000;
    setTimeout(function () {
      self._holdUntil = 0;
      self._setBusy(false);
    }, seconds * 1000);
  };

  /** Follows a created prediction to its end: the SSE stream when there is one, else (or on failure) polling. */
  SdImage.prototype._follow = function (prediction, auth, signal) {
    var self = this;
    if (!prediction || !prediction.urls) return Promise.resolve(prediction);
    if (prediction.status === 'succeeded' || prediction.status === 'failed' || prediction.status === 'canceled') {
      return Promise.resolve(prediction);
    }
    this.setAttribute('state', 'processing');
    var stream = prediction.urls.stream;
    var viaStream = stream ? this._stream(prediction, stream, signal) : Promise.resolve(null);
    return viaStream
      .catch(function (err) {
        if (err && err.name === 'AbortError') throw err;
        return null;
      })
      .then(function (result) {
        return result || self._poll(prediction.urls.get, auth, signal);
      });
  };

  SdImage.prototype._onProgress = function (progress) {
    if (!progress) return;
    var label = progress.total ? 'Step ' + progress.step + ' of ' + progress.total : 'Working…';
    this._showProgress(progress.fraction, label);
  };

  /** Streams the prediction's Server-Sent Events (fetch, not EventSource: it works with any CORS setup). */
  SdImage.prototype._stream = function (prediction, url, signal) {
    var self = this;
    var outputs = [];
    var result = null;
    // The stream URL is a capability URL (its token is in the query), so no Authorization header and no preflight.
    return fetch(url, { headers: { Accept: 'text/event-stream' }, mode: 'cors', credentials: 'omit', signal: signal }).then(function (response) {
      if (!response.ok || !response.body) return null;
      return readEventStream(response, function (name, data) {
        var parsed = null;
        try {
          parsed = data && data.charAt(0) === '{' ? JSON.parse(data) : null;
        } catch (e) { /* plain text */ }
        if (name === 'status' && parsed && parsed.status === 'processing') self._showProgress(undefined, 'Generating…');
        else if (name === 'progress') self._onProgress(parsed);
        else if (name === 'output' && data) outputs.push(data);
        else if (name === 'error') result = { status: 'failed', error: (parsed && parsed.detail) || data, output: null };
        else if (name === 'done') {
          var reason = parsed && parsed.reason;
          if (!result) result = reason === 'canceled' ? { status: 'canceled', output: null } : { status: 'succeeded', output: outputs };
          return true;
        }
        return false;
      }).then(function () {
        if (result) result = Object.assign({}, prediction, result);
        return result;
      });
    });
  };

  /** Polls GET /v1/predictions/{id} until the prediction ends. */
  SdImage.prototype._poll = function (url, auth, signal) {
    var self = this;
    var delay = 500;
    function once() {
      return fetch(url, { headers: auth, mode: 'cors', credentials: 'omit', signal: signal }).then(function (response) {
        return readJson(response).then(function (json) {
          if (!response.ok) {
            var error = new Error(humanError(response.status, json, response.headers.get('Retry-After')));
            error.status = response.status;
            throw error;
          }
          if (json.status === 'succeeded' || json.status === 'failed' || json.status === 'canceled') return json;
          if (json.status === 'processing') self._showProgress(json.progress ? json.progress.fraction : undefined, 'Generating…');
          self._onProgress(json.progress);
          return sleep(delay, signal).then(function () {
            delay = Math.min(2000, Math.round(delay * 1.5));
            return once();
          });
        });
      });
    }
    return once().catch(function (err) {
      if (err && err.status) {
        self._fail(err.status, err.message);
        return null;
      }
      throw err;
    });
  };

  window.customElements.define('sd-image', SdImage);
})();
`;
