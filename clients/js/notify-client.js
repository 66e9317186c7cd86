/*
 * Notify Plexer client (protocol notify.v1, see docs/PLEXER_PROTOCOL.md). No build step: load it with a
 * <script> tag (it defines `NotifyClient`) or require/import it from a bundler.
 *
 *   const client = new NotifyClient({
 *     url: "wss://notify.example.com/ws",
 *     getToken: async () => (await fetch("/session/token")).text(),   // called on every (re)connect
 *     onEvent: (event) => showNotification(event),                      // {id, notification_id, type, payload, …}
 *   });
 *   client.connect();
 *   await client.ack({ upTo: lastSeenId });                             // cancels the pending pushes
 *   const reply = await client.request("chat", { method: "POST", path: "/v1/rooms/7/messages", body: { text } });
 *
 * It reconnects with exponential backoff and full jitter (or after the server's retry hint when it restarts),
 * resumes the live feed after the last event it delivered (kept in localStorage when `storageKey` is set), so
 * nothing is missed or delivered twice across reconnects, and fetches a fresh token before reconnecting when the
 * old one expired or was refused.
 */
(function (root) {
  "use strict";

  const PROTOCOL = "notify.v1";
  // Close codes (docs/PLEXER_PROTOCOL.md) after which reconnecting cannot help without a change on our side.
  const FATAL = new Set([1002, 1003, 1007, 1009]);

  class NotifyError extends Error {
    constructor(code, message, extra) {
      super(message);
      this.name = "NotifyError";
      this.code = code;
      Object.assign(this, extra || {});
    }
  }

  class NotifyClient {
    /**
     * @param {object} options
     * @param {string} options.url the Plexer's ws:// or wss:// URL (…/ws)
     * @param {() => Promise<string>|string} options.getToken the user's JWT, asked for on every (re)connect
     * @param {(event: object) => void} [options.onEvent] each notification, once, in order
     * @param {(state: string, detail?: object) => void} [options.onState] "connecting", "ready", "closed" (with
     *   the close code), "lost" (events were trimmed from the inbox before they could be replayed), "unavailable"
     *   (the live feed waits for the notification store; it resumes by itself, other channels keep working)
     * @param {(channel: string, message: object) => void} [options.onMessage] events of other channels
     * @param {string} [options.storageKey] keep the last event id in localStorage under this key
     * @param {number} [options.requestTimeoutMs=15000]
     * @param {number} [options.backoffBaseMs=500]
     * @param {number} [options.backoffMaxMs=30000]
     */
    constructor(options) {
      if (!options || !options.url || !options.getToken) throw new TypeError("url and getToken are required");
      this.options = Object.assign(
        { requestTimeoutMs: 15000, backoffBaseMs: 500, backoffMaxMs: 30000 }, options);
      this.lastEventId = this._load();
      this._socket = null;
      this._nextId = 1;
      this._pending = new Map();
      this._attempt = 0;
      this._retryHintMs = null;
      this._timer = null;
      this._stopped = true;
      // Authenticated: requests may go out (on any channel).
      this._connected = false;
      // …and the live feed is resumed.
      this._ready = false;
      this._resumeSeq = 0;
      this._resumeId = null;
      this._resumeAttempt = 0;
      this._resumeTimer = null;
    }

    /** Opens the socket (and keeps it open, reconnecting, until `close()`). */
    connect() {
      this._stopped = false;
      this._open();
    }

    /** Closes the socket for good. */
    close() {
      this._stopped = true;
      clearTimeout(this._timer);
      clearTimeout(this._resumeTimer);
      if (this._socket) this._socket.close(1000, "bye");
      this._failPending(new NotifyError("closed", "the client was closed"));
    }

    /** Whether the socket is authenticated and the live feed resumed. */
    get ready() {
      return this._ready;
    }

    /**
     * Acks events: their pushes must not go out. `ids` (event ids), `upTo` (this event and every earlier one), or
     * both. Resolves with {cancelled, in_flight, already_sent}.
     */
    ack({ ids, upTo } = {}) {
      const frame = { op: "ack" };
      if (ids && ids.length) frame.ids = ids;
      if (upTo) frame.up_to = upTo;
      return this.request("notify", frame);
    }

    /** One page of the inbox: {events, next}; pass `next` as `before` for the page after it. */
    inbox({ before, after, limit, order } = {}) {
      const frame = { op: "inbox" };
      if (before) frame.before = before;
      if (after) frame.after = after;
      if (limit) frame.limit = limit;
      if (order) frame.order = order;
      return this.request("notify", frame);
    }

    /**
     * Sends a request on `channel` and resolves with its reply (rejects with a NotifyError for an error frame, a
     * timeout or a lost socket). An upstream HTTP channel's reply has {status, headers, body}.
     */
    request(channel, frame) {
      return new Promise((resolve, reject) => {
        if (!this._socket || this._socket.readyState !== 1 || !this._connected) {
          reject(new NotifyError("not_connected", "the socket is not ready; retry once it is"));
          return;
        }
        const id = this._nextId++;
        const timer = setTimeout(() => {
          this._pending.delete(id);
          reject(new NotifyError("timeout", "no reply within " + this.options.requestTimeoutMs + " ms"));
        }, this.options.requestTimeoutMs);
        this._pending.set(id, { resolve, reject, timer });
        this._socket.send(JSON.stringify(Object.assign({}, frame, { ch: channel, id })));
      });
    }

    // Internals

    async _open() {
      if (this._stopped) return;
      this._state("connecting");
      let token;
      try {
        token = await this.options.getToken();
      } catch (error) {
        this._scheduleReconnect();
        return;
      }
      if (this._stopped) return;
      const url = this.options.url + (this.options.url.includes("?") ? "&" : "?") +
        "access_token=" + encodeURIComponent(token);
      const socket = new WebSocket(url, PROTOCOL);
      this._socket = socket;
      socket.onmessage = (message) => this._received(message.data);
      socket.onclose = (close) => this._closed(socket, close.code, close.reason);
    }

    _received(text) {
      let message;
      try {
        message = JSON.parse(text);
      } catch (error) {
        return;
      }
      if (message.ch === "sys" && message.ev === "ready") {
        this._connected = true;
        this._attempt = 0;
        this._resume();
        return;
      }
      if (message.ch === "notify" && typeof message.id === "string" && message.id.startsWith("resume-")) {
        // Only the latest resume counts; an earlier one answers "replaced" or arrives late.
        if (message.id !== this._resumeId) return;
        if (message.error) {
          // The store is unreachable for now: the socket (and its other channels) stays; resume again later.
          this._state("unavailable", { code: message.error.code });
          this._resumeLater();
          return;
        }
        this._ready = true;
        this._resumeAttempt = 0;
        this._state("ready");
        return;
      }
      if (message.ch === "sys" && message.ev === "reconnect") {
        this._retryHintMs = message.retry_ms;
        return;
      }
      if (message.ch === "notify" && message.ev === "notification") {
        this.lastEventId = message.event.id;
        this._save(this.lastEventId);
        if (this.options.onEvent) this.options.onEvent(message.event);
        return;
      }
      if (message.ch === "notify" && message.ev === "lost") {
        this._state("lost", { oldestId: message.oldest_id });
        return;
      }
      if (message.ch === "notify" && message.ev === "ended") {
        // The server could not keep the feed (its store was unreachable): resume again after a pause; requests
        // on other channels go on meanwhile.
        this._ready = false;
        this._state("unavailable", { reason: message.reason });
        this._resumeLater();
        return;
      }
      if (message.id !== undefined && message.id !== null && this._pending.has(message.id)) {
        const pending = this._pending.get(message.id);
        this._pending.delete(message.id);
        clearTimeout(pending.timer);
        if (message.error) {
          pending.reject(new NotifyError(message.error.code, message.error.message, { retryMs: message.error.retry_ms }));
        } else {
          pending.resolve(message);
        }
        return;
      }
      if (this.options.onMessage) this.options.onMessage(message.ch, message);
    }

    /** Live from after the last event delivered (or from now, the first time). */
    _resume() {
      if (!this._socket || this._socket.readyState !== 1) return;
      this._resumeSeq += 1;
      this._resumeId = "resume-" + this._resumeSeq;
      const frame = { ch: "notify", op: "resume", id: this._resumeId };
      if (this.lastEventId) frame.after = this.lastEventId;
      this._socket.send(JSON.stringify(frame));
    }

    /** Resume again after a backoff of its own (the socket stays up meanwhile). */
    _resumeLater() {
      const ceiling = Math.min(
        this.options.backoffMaxMs, this.options.backoffBaseMs * Math.pow(2, this._resumeAttempt));
      this._resumeAttempt += 1;
      clearTimeout(this._resumeTimer);
      const socket = this._socket;
      this._resumeTimer = setTimeout(() => {
        if (socket === this._socket) this._resume();
      }, Math.floor(Math.random() * ceiling));
    }

    _closed(socket, code, reason) {
      if (socket !== this._socket) return;
      this._socket = null;
      this._connected = false;
      this._ready = false;
      clearTimeout(this._resumeTimer);
      this._resumeAttempt = 0;
      this._failPending(new NotifyError("disconnected", "the socket closed (" + code + ")"));
      this._state("closed", { code, reason });
      if (this._stopped || FATAL.has(code)) return;
      // 4001/4003 (refused or expired token): the reconnect asks getToken for a fresh one, as every connect does.
      this._scheduleReconnect();
    }

    _scheduleReconnect() {
      const delay = this._retryHintMs !== null ? this._retryHintMs : this._backoff();
      this._retryHintMs = null;
      this._attempt += 1;
      clearTimeout(this._timer);
      this._timer = setTimeout(() => this._open(), delay);
    }

    /** Exponential backoff with full jitter: a random wait up to base × 2^attempt, capped. */
    _backoff() {
      const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * Math.pow(2, this._attempt));
      return Math.floor(Math.random() * ceiling);
    }

    _failPending(error) {
      for (const pending of this._pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(error);
      }
      this._pending.clear();
    }

    _state(state, detail) {
      if (this.options.onState) this.options.onState(state, detail);
    }

    _load() {
      try {
        return this.options.storageKey && root.localStorage ? root.localStorage.getItem(this.options.storageKey) : null;
      } catch (error) {
        return null;
      }
    }

    _save(id) {
      try {
        if (this.options.storageKey && root.localStorage) root.localStorage.setItem(this.options.storageKey, id);
      } catch (error) {
        // storage full or disabled: the feed still resumes within this page's life
      }
    }
  }

  root.NotifyClient = NotifyClient;
  root.NotifyError = NotifyError;
  if (typeof module === "object" && module.exports) module.exports = { NotifyClient, NotifyError };
})(typeof globalThis !== "undefined" ? globalThis : this);
