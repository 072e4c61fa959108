/*! Kefu Hub chat widget. Embed with:
 *   <script src="https://HOST/widget.js" data-channel="web"></script>
 * Vanilla JS, no dependencies. Renders in an open shadow root (no iframe).
 * Protocol: README.md "The chat widget" (hello, ack, message, typing / message, postback, resume, typing).
 * hello gives the visitor id and its token; both are kept in localStorage and the token is sent
 * back on every socket and upload (it proves the visitor id, which is not a secret).
 * Files (images, PDF) go first to POST <channel>/upload (raw body), then as a message attachment.
 * A message the server refuses for a rate limit (an error frame with retry_after and its
 * client_id) stays pending and is sent again after retry_after seconds.
 * Message text is untrusted: it is only ever set with textContent.
 */
(function () {
  "use strict";
  if (window.kefuWidget) return; // one widget per page

  var script = document.currentScript || (function () {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    return all[all.length - 1];
  })();
  var base = new URL(script ? script.src : "/widget.js", location.href);
  var channel = (script && script.getAttribute("data-channel")) || "web";
  var prefix = channel === "web" ? "/channels/web" : "/channels/web/" + encodeURIComponent(channel);
  var wsBase = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + prefix + "/ws";
  var upBase = base.protocol + "//" + base.host + prefix + "/upload";
  var TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"], MAX = 10000000;
  var KEY = "kefu:" + base.host + ":" + channel + ":";

  var zh = /^zh/i.test(navigator.language || "");
  var T = zh ? {
    title: "在线客服", open: "打开在线客服", close: "关闭", placeholder: "输入消息…", send: "发送",
    lost: "连接已断开，正在重连…", connecting: "正在连接…", typing: "对方正在输入…", log: "聊天消息",
    agent: "人工客服", bot: "智能助手", file: "文件", sending: "发送中", unread: "条未读消息",
    attach: "发送图片或 PDF", big: "文件太大（最大 10 MB）", type: "只能发送图片或 PDF", failed: "上传失败",
    slow: "发送太频繁，{n} 秒后自动重发", wait: "发送太频繁，请 {n} 秒后再试"
  } : {
    title: "Customer support", open: "Open chat", close: "Close chat", placeholder: "Type a message…", send: "Send",
    lost: "Connection lost, reconnecting…", connecting: "Connecting…", typing: "Typing…", log: "Chat messages",
    agent: "Agent", bot: "Assistant", file: "File", sending: "Sending", unread: "unread messages",
    attach: "Send an image or PDF", big: "File too large (max 10 MB)", type: "Only images or PDF files", failed: "Upload failed",
    slow: "Too many messages at once; sending again in {n} s", wait: "Too many messages at once; try again in {n} s"
  };

  function store(name, value) {
    try {
      if (value === undefined) return localStorage.getItem(KEY + name);
      if (value === null) localStorage.removeItem(KEY + name);
      else localStorage.setItem(KEY + name, String(value));
    } catch (e) { /* storage may be blocked: the widget still works for this page */ }
  }

  var CSS = [
    ":host{all:initial;font:14px/1.45 system-ui,-apple-system,'Segoe UI','PingFang SC','Microsoft YaHei',sans-serif;color:#1f2328}",
    "*{box-sizing:border-box}",
    "button{font:inherit;cursor:pointer}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border:0;border-radius:50%;background:#2563eb;color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}",
    ".launcher:focus-visible,.panel button:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}",
    "textarea:focus{outline:none;border-color:#2563eb;box-shadow:0 0 0 2px rgba(37,99,235,.3)}",
    ".launcher svg{width:28px;height:28px;fill:currentColor}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;background:#dc2626;color:#fff;font-size:12px;font-weight:600;line-height:20px;text-align:center}",
    ".badge[hidden]{display:none}",
    ".panel{position:fixed;right:20px;bottom:88px;z-index:2147483001;width:360px;height:540px;max-height:calc(100vh - 108px);display:flex;flex-direction:column;background:#fff;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);overflow:hidden}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:#2563eb;color:#fff}",
    "header h2{flex:1;margin:0;font-size:16px;font-weight:600}",
    ".close{border:0;background:transparent;color:#fff;font-size:22px;line-height:1;padding:2px 8px;border-radius:6px}",
    ".status{padding:6px 12px;background:#fef3c7;color:#92400e;font-size:12px;text-align:center}",
    ".status[hidden]{display:none}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f7f9}",
    ".msg{max-width:82%;display:flex;flex-direction:column;gap:4px}",
    ".bubble{padding:8px 12px;border-radius:14px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}",
    ".who{font-size:11px;color:#6b7280;padding:0 4px}",
    ".contact{align-self:flex-end;align-items:flex-end}",
    ".contact .bubble{background:#2563eb;color:#fff;border-bottom-right-radius:4px}",
    ".contact.pending .bubble{opacity:.6}",
    ".bot{align-self:flex-start}",
    ".bot .bubble{background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px}",
    ".agent{align-self:flex-start}",
    ".agent .bubble{background:#dcfce7;border:1px solid #86efac;border-bottom-left-radius:4px}",
    ".system{align-self:center;max-width:92%}",
    ".system .bubble{background:transparent;color:#4b5563;font-size:12px;font-style:italic;text-align:center;padding:2px 8px}",
    ".buttons{display:flex;flex-wrap:wrap;gap:6px}",
    ".buttons button{border:1px solid #2563eb;background:#fff;color:#2563eb;border-radius:16px;padding:5px 12px}",
    ".buttons button:hover{background:#eff6ff}",
    ".msg img{max-width:100%;max-height:240px;border-radius:10px;display:block}",
    ".msg a{color:inherit;text-decoration:underline}",
    ".typing{align-self:flex-start;color:#6b7280;font-size:12px;padding:0 4px}",
    ".typing[hidden]{display:none}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}",
    "textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:10px;padding:8px 10px;font:inherit;max-height:120px;min-height:38px}",
    ".attach{border:0;background:transparent;color:#4b5563;font-size:20px;padding:0 4px;border-radius:8px}",
    ".err{padding:4px 12px;color:#b91c1c;font-size:12px;background:#fff}",
    ".err[hidden]{display:none}",
    ".send{border:0;border-radius:10px;background:#2563eb;color:#fff;padding:0 16px;font-weight:600}",
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100%;height:100%;max-height:none;border-radius:0}.panel:not([hidden])~.launcher{display:none}}",
    "@media (prefers-reduced-motion:no-preference){.panel{animation:kefu-in .15s ease-out}@keyframes kefu-in{from{opacity:0;transform:translateY(8px)}}}"
  ].join("\n");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }

  // ---- DOM (inside an open shadow root) -------------------------------------------------------
  var host = el("div", { id: "kefu-widget", "data-channel": channel });
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("style", {}, CSS));

  var panel = el("section", { class: "panel", role: "dialog", "aria-label": T.title, hidden: "" });
  var header = el("header");
  header.appendChild(el("h2", {}, T.title));
  var closeBtn = el("button", { type: "button", class: "close", "aria-label": T.close, title: T.close }, "×");
  header.appendChild(closeBtn);
  var status = el("div", { class: "status", role: "status", hidden: "" });
  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0" });
  var typing = el("div", { class: "typing", hidden: "", "aria-live": "polite" }, T.typing);
  var form = el("form", { autocomplete: "off" });
  var input = el("textarea", {
    rows: "1", placeholder: T.placeholder, "aria-label": T.placeholder, "data-testid": "kefu-input", maxlength: "4000"
  });
  var sendBtn = el("button", { type: "submit", class: "send", "aria-label": T.send, "data-testid": "kefu-send" }, T.send);
  var attachBtn = el("button", { type: "button", class: "attach", "aria-label": T.attach, title: T.attach, "data-testid": "kefu-attach" }, "\ud83d\udcce");
  var fileInput = el("input", { type: "file", accept: "image/*,application/pdf", hidden: "", "data-testid": "kefu-file" });
  var err = el("div", { class: "err", role: "alert", hidden: "" });
  form.appendChild(attachBtn);
  form.appendChild(fileInput);
  form.appendChild(input);
  form.appendChild(sendBtn);
  panel.appendChild(header);
  panel.appendChild(status);
  panel.appendChild(log);
  panel.appendChild(err);
  panel.appendChild(form);
  log.appendChild(typing);

  var launcher = el("button", {
    type: "button", class: "launcher", "aria-label": T.open, "aria-expanded": "false", "data-testid": "kefu-launcher"
  });
  var NS = "http://www.w3.org/2000/svg", icon = document.createElementNS(NS, "svg"), path = document.createElementNS(NS, "path");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("aria-hidden", "true");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-4 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z");
  icon.appendChild(path);
  launcher.appendChild(icon);
  var badge = el("span", { class: "badge", hidden: "", "data-testid": "kefu-unread" });
  launcher.appendChild(badge);
  root.appendChild(panel);
  root.appendChild(launcher);

  // ---- state ----------------------------------------------------------------------------------
  var visitor = store("visitor");
  var token = store("token"); // proves the visitor id (given by hello)
  var seen = {};          // message id -> element (dedupe)
  var lastId = 0;         // highest message id received
  var readId = Number(store("read") || 0); // highest id the customer has seen with the panel open
  var outbox = [];        // unacked messages: {client_id, frame, node}
  var local = [];         // shown locally without an id yet (pending messages, pressed buttons)
  var counter = Number(store("seq") || 0);
  var tab = Math.random().toString(36).slice(2, 8);
  var ws = null, ready = false, attempt = 0, timer = null, everConnected = false, typingTimer = null;
  var holdUntil = 0, errTimer = null; // the server asked to wait (a rate limit) until then
  var isOpen = false;

  function updateBadge() {
    var n = 0;
    if (!isOpen) for (var id in seen) if (Number(id) > readId && seen[id].getAttribute("data-sender") !== "contact") n++;
    badge.textContent = n > 99 ? "99+" : String(n);
    badge.hidden = n === 0;
    launcher.setAttribute("aria-label", n ? T.open + " (" + n + " " + T.unread + ")" : T.open);
  }

  function markRead() {
    if (lastId > readId) { readId = lastId; store("read", readId); }
    updateBadge();
  }

  function setOpen(open) {
    isOpen = open;
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    try { sessionStorage.setItem(KEY + "open", open ? "1" : ""); } catch (e) { /* ignore */ }
    if (open) {
      markRead();
      scrollDown();
      input.focus();
    } else {
      updateBadge();
    }
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function safeUrl(url) {
    try {
      var u = new URL(url, base);
      return u.protocol === "http:" || u.protocol === "https:" || u.protocol === "data:" && /^data:image\//.test(url) ? u.href : null;
    } catch (e) { return null; }
  }

  // a message from the server goes in id order, above any still pending ones
  function place(node, id) {
    var kids = log.children;
    for (var i = 0; i < kids.length; i++) {
      var k = kids[i], kid = k.getAttribute("data-id");
      if (k === typing || k.classList.contains("pending") || kid && Number(kid) > id) return log.insertBefore(node, k);
    }
    log.insertBefore(node, typing);
  }

  function render(sender, text, buttons, attachments, id) {
    var node = el("div", { class: "msg " + sender, "data-testid": "kefu-message", "data-sender": sender });
    if (sender === "agent" || sender === "bot") node.appendChild(el("span", { class: "who" }, sender === "agent" ? T.agent : T.bot));
    (attachments || []).forEach(function (a) {
      var href = a && safeUrl(a.url);
      if (!href) return;
      if (a.kind === "image") {
        node.appendChild(el("img", { src: href, alt: a.name || "", loading: "lazy" }));
      } else {
        var link = el("a", { href: href, target: "_blank", rel: "noopener noreferrer", download: "" }, a.name || T.file);
        var wrap = el("div", { class: "bubble" });
        wrap.appendChild(link);
        node.appendChild(wrap);
      }
    });
    if (text) node.appendChild(el("div", { class: "bubble" }, text));
    if (buttons && buttons.length) {
      var row = el("div", { class: "buttons" });
      buttons.forEach(function (b) {
        var btn = el("button", { type: "button", "data-testid": "kefu-button", "data-payload": b.payload }, b.title);
        btn.addEventListener("click", function () { postback(b.payload, b.title); });
        row.appendChild(btn);
      });
      node.appendChild(row);
    }
    if (id) place(node, Number(id)); else log.insertBefore(node, typing);
    scrollDown();
    return node;
  }

  function claim(node, id) {
    node.setAttribute("data-id", id);
    node.classList.remove("pending");
    node.removeAttribute("aria-busy");
    node.removeAttribute("title");
    seen[id] = node;
    local = local.filter(function (n) { return n !== node; });
  }

  function onMessage(f) {
    var id = String(f.id);
    if (seen[id]) return; // already shown (resume after reconnect, or the ack came first)
    if (Number(id) > lastId) lastId = Number(id);
    if (f.sender === "contact") {
      // our own message coming back with resume: adopt the local copy instead of showing it twice
      for (var i = 0; i < local.length; i++) {
        if (local[i].getAttribute("data-text") === key(f.text, f.attachments)) { claim(local[i], id); return; }
      }
    } else {
      typing.hidden = true;
    }
    claim(render(f.sender || "bot", f.text, f.buttons, f.attachments, id), id);
    if (isOpen && document.visibilityState !== "hidden") markRead(); else updateBadge();
  }

  function onAck(f) {
    var id = String(f.id);
    for (var i = 0; i < outbox.length; i++) {
      if (outbox[i].client_id !== f.client_id) continue;
      var item = outbox.splice(i, 1)[0];
      if (seen[id] && seen[id] !== item.node) { // shown already by a resume: drop the copy
        item.node.remove();
        local = local.filter(function (n) { return n !== item.node; });
      } else {
        claim(item.node, id);
      }
      return;
    }
  }

  function send(frame) {
    if (ws && ready && ws.readyState === 1) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function key(text, atts) {
    return (text || "") + (atts || []).map(function (a) { return "\n" + a.url; }).join("");
  }

  function sendText(text, atts) {
    text = text.replace(/^\s+|\s+$/g, "").slice(0, 4000);
    atts = atts || [];
    if (!text && !atts.length) return;
    counter += 1;
    store("seq", counter);
    var item = { client_id: "c-" + counter + "-" + tab };
    item.frame = { type: "message", client_id: item.client_id, text: text, attachments: atts };
    item.node = render("contact", text, null, atts);
    item.node.classList.add("pending");
    item.node.setAttribute("aria-busy", "true");
    item.node.setAttribute("data-text", key(text, atts));
    item.node.setAttribute("title", T.sending);
    local.push(item.node);
    outbox.push(item);
    send(item.frame);
  }

  function showError(text, seconds) {
    clearTimeout(errTimer);
    err.textContent = text || "";
    err.hidden = !text;
    if (text && seconds) errTimer = setTimeout(function () { showError(""); }, seconds * 1000);
  }

  // the server refused a frame for a rate limit: a message stays pending and goes again later
  function onRefused(f) {
    var wait = Math.max(1, Number(f.retry_after) || 1);
    if (!ready) holdUntil = Date.now() + wait * 1000; // a refused socket: reconnect after that
    var again = outbox.filter(function (item) { return f.client_id && item.client_id === f.client_id; });
    again.forEach(function (item) {
      setTimeout(function () { if (outbox.indexOf(item) >= 0) send(item.frame); }, wait * 1000);
    });
    if (f.payload) { // a refused button press: it was not taken, so it is not shown
      var pressed = local.filter(function (n) { return n.getAttribute("data-postback") === f.payload; }).pop();
      if (pressed) { pressed.remove(); local = local.filter(function (n) { return n !== pressed; }); }
    }
    showError((again.length ? T.slow : T.wait).replace("{n}", String(wait)), wait);
  }

  function upload(file) {
    showError("");
    if (TYPES.indexOf(file.type) < 0) return showError(T.type);
    if (file.size > MAX) return showError(T.big);
    if (!visitor) return showError(T.connecting);
    var url = upBase + "?visitor=" + encodeURIComponent(visitor) + "&token=" + encodeURIComponent(token || "") +
      "&name=" + encodeURIComponent(file.name);
    attachBtn.disabled = true;
    fetch(url, { method: "POST", headers: { "content-type": file.type }, body: file })
      .then(function (r) {
        return r.json().then(function (j) {
          if (!r.ok) throw new Error(j.error || T.failed);
          sendText("", [{ url: j.url, name: j.name, mime_type: j.mime_type, kind: j.kind }]);
        });
      })
      .catch(function (e) { showError(e && e.message || T.failed); })
      .then(function () { attachBtn.disabled = false; });
  }

  function postback(payload, title) {
    if (!send({ type: "postback", payload: payload, title: title })) return; // offline: nothing is sent
    // shown at once; the server sends no ack for a postback, so it has an id only if resumed
    var node = render("contact", title || payload);
    node.setAttribute("data-text", title || payload);
    node.setAttribute("data-postback", payload);
    local.push(node);
  }

  // ---- connection -----------------------------------------------------------------------------
  function showStatus(text) {
    status.textContent = text || "";
    status.hidden = !text;
  }

  function connect() {
    clearTimeout(timer);
    timer = null;
    ready = false;
    // a signed identity from the site (data-email + data-hash, data-phone + data-phone-hash)
    var who = ["email", "hash", "phone", "phone-hash"].map(function (k) {
      var v = script && script.getAttribute("data-" + k);
      return v ? "&" + k.replace("-", "_") + "=" + encodeURIComponent(v) : "";
    }).join("");
    var url = wsBase + "?visitor=" + encodeURIComponent(visitor || "") +
      (token ? "&token=" + encodeURIComponent(token) : "") + who;
    var sock;
    try { sock = new WebSocket(url); } catch (e) { return retry(); }
    ws = sock;
    sock.onmessage = function (ev) {
      if (sock !== ws) return;
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (!f || typeof f !== "object") return;
      if (f.type === "hello") {
        // a new visitor when the one asked for could not be proven (no or another token)
        if (f.visitor && f.visitor !== visitor) { visitor = f.visitor; store("visitor", visitor); }
        if (f.token && f.token !== token) { token = f.token; store("token", token); }
        ready = true;
        attempt = 0;
        everConnected = true;
        showStatus("");
        sock.send(JSON.stringify({ type: "resume", after: String(lastId) }));
        // unacked messages go again, with the same client_id (the server drops a repeat)
        outbox.forEach(function (item) { sock.send(JSON.stringify(item.frame)); });
      } else if (f.type === "message") {
        onMessage(f);
      } else if (f.type === "ack") {
        onAck(f);
      } else if (f.type === "typing") {
        typing.hidden = !f.on;
        clearTimeout(typingTimer);
        if (f.on) { typingTimer = setTimeout(function () { typing.hidden = true; }, 15000); scrollDown(); }
      } else if (f.type === "error") {
        if (f.retry_after) onRefused(f);
        if (window.console) console.warn("kefu widget:", f.error);
      }
    };
    sock.onclose = function () {
      if (sock !== ws) return;
      ws = null;
      ready = false;
      retry();
    };
    sock.onerror = function () { /* onclose follows */ };
  }

  function retry() {
    if (timer) return;
    showStatus(everConnected ? T.lost : T.connecting);
    var delay = Math.min(10000, 500 * Math.pow(2, attempt));
    attempt += 1;
    delay = delay / 2 + Math.random() * delay / 2; // jitter: 50..100 % of the step
    delay = Math.max(delay, holdUntil - Date.now());
    timer = setTimeout(connect, delay);
  }

  window.addEventListener("online", function () { if (!ws) connect(); });

  // ---- events ---------------------------------------------------------------------------------
  launcher.addEventListener("click", function () { setOpen(!isOpen); });
  closeBtn.addEventListener("click", function () { setOpen(false); launcher.focus(); });
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { setOpen(false); launcher.focus(); }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    sendText(input.value);
    input.value = "";
    stopTyping();
    input.focus();
  });
  attachBtn.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    if (fileInput.files && fileInput.files[0]) upload(fileInput.files[0]);
    fileInput.value = "";
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { // IME composition: Enter picks a word
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  var typingOn = false, typingIdle = null;
  function stopTyping() {
    clearTimeout(typingIdle);
    if (typingOn) { typingOn = false; send({ type: "typing", on: false }); }
  }
  input.addEventListener("input", function () {
    if (!typingOn && input.value) { typingOn = true; send({ type: "typing", on: true }); }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, 3000);
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && isOpen) markRead();
  });

  window.kefuWidget = {
    get socket() { return ws; },
    get visitor() { return visitor; },
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    toggle: function () { setOpen(!isOpen); },
    send: sendText,
    root: root
  };

  function mount() {
    document.body.appendChild(host);
    var wasOpen = false;
    try { wasOpen = !!sessionStorage.getItem(KEY + "open"); } catch (e) { /* ignore */ }
    if (wasOpen) setOpen(true);
    connect();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
