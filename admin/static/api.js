// The inbox API (README.md "Work as an agent (inbox API)") and its events socket, as the pages use them.

const TOKEN = "kefu.admin.token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : describe(detail));
    this.status = status;
  }
}

// FastAPI's 422 detail is a list of {loc, msg}: say it as "field: what is wrong".
function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`).join("; ");
  }
  return detail ? JSON.stringify(detail) : "request failed";
}

export const auth = {
  get token() {
    try { return localStorage.getItem(TOKEN); } catch { return null; }
  },
  set token(value) {
    try {
      if (value) localStorage.setItem(TOKEN, value);
      else localStorage.removeItem(TOKEN);
    } catch { /* private mode: the session lasts as long as the page */ }
  },
  onExpired: () => {},
};

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network");
  }
  if (response.status === 401 && path !== "/auth/login") {
    auth.token = null;
    auth.onExpired();
  }
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { /* empty or not JSON */ }
  if (!response.ok) throw new ApiError(response.status, data && data.detail);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});

// Query string of the defined values only.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// The events socket: calls `onEvent` with each {type, conversation_id, data}; reconnects with
// backoff and calls `onReconnect` so the page reloads what it may have missed.
export function connectEvents({ onEvent, onState, onReconnect }) {
  let socket = null, attempt = 0, closed = false, timer = null, everOpen = false;
  const open = () => {
    if (closed || !auth.token) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/events?token=${encodeURIComponent(auth.token)}`);
    socket.onopen = () => {
      attempt = 0;
      onState(true);
      if (everOpen) onReconnect();
      everOpen = true;
    };
    socket.onmessage = (e) => {
      try { onEvent(JSON.parse(e.data)); } catch (err) { console.error(err); }
    };
    socket.onclose = (e) => {
      onState(false);
      if (closed) return;
      if (e.code === 1008) { auth.token = null; auth.onExpired(); return; } // token refused
      const delay = Math.min(30000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2);
      timer = setTimeout(open, delay);
    };
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}
