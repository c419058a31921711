// The airpath HTTP API as the map uses it: GET /v1/field and GET /v1/route.
//
// Every error the API sends is an RFC 9457 problem document; ApiError carries its
// ``detail`` so that the page can show the reason as the server worded it.

const TIMEOUT_MS = 20000;

export class ApiError extends Error {
  constructor(message, { status = 0, type = "" } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
  }
}

function isAbort(err) {
  return err?.name === "AbortError";
}

/** GET ``path`` with ``params``; the JSON body, or ApiError with the problem's detail. */
export async function getJson(path, params, signal) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
  }
  const timeout = AbortSignal.timeout(TIMEOUT_MS);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let res;
  try {
    res = await fetch(url, { headers: { Accept: "application/json" }, signal: both });
  } catch (err) {
    if (signal?.aborted) throw err;
    if (timeout.aborted) throw new ApiError(`${path}: no answer within ${TIMEOUT_MS / 1000} s`);
    if (isAbort(err)) throw err;
    throw new ApiError(`${path}: the server cannot be reached`);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const detail = body?.detail ?? body?.title ?? `${res.status} ${res.statusText}`;
    const text = typeof detail === "string" ? detail : JSON.stringify(detail);
    throw new ApiError(text, { status: res.status, type: body?.type ?? "" });
  }
  if (body === null) throw new ApiError(`${path}: the answer is not JSON`);
  return body;
}

export { isAbort };

/** ``date`` as ISO 8601 with the browser's UTC offset, e.g. 2026-05-01T10:15:00+03:00. */
export function isoWithOffset(date) {
  const pad = (n) => String(Math.trunc(Math.abs(n))).padStart(2, "0");
  const offsetMin = -date.getTimezoneOffset();
  const sign = offsetMin >= 0 ? "+" : "-";
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(offsetMin / 60)}:${pad(offsetMin % 60)}`
  );
}

/** "lat,lon" text → {lat, lon}; null if the text is not a pair of numbers in range. */
export function parseLatLon(text) {
  const number = String.raw`([-+]?(?:\d+(?:\.\d*)?|\.\d+))`;
  const m = new RegExp(String.raw`^\s*${number}\s*[,;\s]\s*${number}\s*$`).exec(text);
  if (!m) return null;
  const lat = Number(m[1]);
  const lon = Number(m[2]);
  if (!(Math.abs(lat) <= 90 && Math.abs(lon) <= 180)) return null;
  return { lat, lon };
}
