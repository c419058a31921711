// The live web map: the street network coloured by the pollution field, two points set by
// click or search, and the shortest, balanced and least-exposure routes between them.
//
// The field is polled: every POLL_MS a /v1/field request for an empty box (features: none,
// field info: all of it) tells which version is current and how old it is; a new version
// reloads the streets in view and recomputes the routes.

import { ApiError, getJson, isAbort } from "./api.js";
import { StreetMap } from "./map.js";
import {
  ROUTE_KINDS,
  formatClock,
  renderBadge,
  renderLegend,
  renderRouteRows,
  renderScale,
} from "./panel.js";
import { fetchRoutes } from "./routes.js";
import { colourAt, pollutantLabel, scalePosition } from "./scale.js";
import { StreetIndex, pointText } from "./search.js";

const POLL_MS = 2000;
const FIRST_ZOOM = 16; // geometry detail of the first, network-wide field request
const COLOUR_STEPS = 48; // colours per scale: one canvas stroke each
const RELOAD_DEBOUNCE_MS = 300;

const $ = (selector) => document.querySelector(selector);
const el = {
  canvas: $("#map-canvas"),
  badge: $('[data-testid="freshness-badge"]'),
  form: $('[data-testid="plan-form"]'),
  from: $("#from-input"),
  to: $("#to-input"),
  names: $("#street-names"),
  reset: $("#reset-button"),
  pollutant: $("#pollutant-select"),
  depart: $("#depart-select"),
  panel: $('[data-testid="route-panel"]'),
  empty: $('[data-testid="routes-empty"]'),
  rows: $('[data-testid="route-rows"]'),
  key: $('[data-testid="routes-key"]'),
  note: $('[data-testid="route-note"]'),
  status: $('[data-testid="status"]'),
  error: $('[data-testid="error"]'),
  origin: $('[data-testid="origin-marker"]'),
  destination: $('[data-testid="destination-marker"]'),
  tooltip: $('[data-testid="map-tooltip"]'),
  legend: $('[data-testid="legend"]'),
  scale: $(".scale"),
};

const state = {
  pollutant: el.pollutant.value,
  horizonMin: 0,
  networkBbox: null,
  loaded: null, // what the drawn streets are: {bbox, zoom, truncated, version}
  info: null, // the newest FieldInfo seen, and when (performance.now())
  infoAt: 0,
  reachable: true,
  origin: null, // {lat, lon, label}
  destination: null,
  routes: new Map(), // profile → {feature} | {error}
  routedVersion: null, // field version the shown routes were asked for on
  selected: "least_exposure",
};
const streets = new StreetIndex();
let fieldAbort = null;
let routeAbort = null;
let reloadTimer = 0;

const map = new StreetMap(el.canvas, {
  onPick: (lat, lon) => pick({ lat, lon, label: "" }),
  onViewChange: () => {
    renderScale(el.scale, map.metresPerPixel());
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => needsReload() && loadField(), RELOAD_DEBOUNCE_MS);
  },
  onHover: showTooltip,
});

// Tests and the demo drive the map by coordinates: these pixels are CSS pixels of the canvas.
window.airpathMap = {
  project: (lat, lon) => map.project(lat, lon),
  unproject: (x, y) => map.unproject(x, y),
  bounds: () => map.bounds(),
  get zoom() {
    return map.zoom;
  },
};

// -- messages -------------------------------------------------------------------------
function say(text) {
  el.status.textContent = text;
}

function fail(err) {
  if (isAbort(err)) return;
  el.error.textContent = err instanceof ApiError ? err.message : `Unexpected error: ${err}`;
  el.error.hidden = false;
}

function clearError() {
  el.error.hidden = true;
  el.error.textContent = "";
}

// -- the field --------------------------------------------------------------------------
function ageNow() {
  if (!state.info || state.info.age_s == null) return Number.NaN;
  return state.info.age_s + (performance.now() - state.infoAt) / 1000;
}

function noteInfo(info) {
  state.info = info;
  state.infoAt = performance.now();
  renderBadge(el.badge, state.info, ageNow(), state.reachable);
}

function bboxParam(b) {
  return b.map((v) => v.toFixed(6)).join(",");
}

function viewInNetwork() {
  const v = map.bounds();
  const n = state.networkBbox;
  const box = [
    Math.max(v[0], n[0]),
    Math.max(v[1], n[1]),
    Math.min(v[2], n[2]),
    Math.min(v[3], n[3]),
  ];
  return box[0] < box[2] && box[1] < box[3] ? box : null;
}

function needsReload() {
  const l = state.loaded;
  if (!l || !state.networkBbox) return false;
  const want = viewInNetwork();
  if (!want) return false;
  const [w, s, e, n] = l.bbox;
  const covered = want[0] >= w && want[1] >= s && want[2] <= e && want[3] <= n;
  const zoom = Math.round(map.zoom);
  return !covered || zoom > l.zoom || (l.truncated && zoom !== l.zoom);
}

/** Load the streets in view (the whole network the first time) for the chosen options. */
async function loadField() {
  fieldAbort?.abort();
  const abort = new AbortController();
  fieldAbort = abort;
  const first = !state.networkBbox;
  let bbox = null;
  if (!first) {
    const v = map.bounds();
    const padX = 0.5 * (v[2] - v[0]);
    const padY = 0.5 * (v[3] - v[1]);
    bbox = [
      Math.max(-180, v[0] - padX),
      Math.max(-85, v[1] - padY),
      Math.min(180, v[2] + padX),
      Math.min(85, v[3] + padY),
    ];
  }
  const zoom = first ? FIRST_ZOOM : Math.max(0, Math.min(22, Math.round(map.zoom)));
  const pollutant = state.pollutant;
  const horizon = state.horizonMin;
  let body;
  try {
    body = await getJson(
      "v1/field",
      { bbox: bbox && bboxParam(bbox), pollutant, zoom, horizon },
      abort.signal,
    );
  } catch (err) {
    if (!isAbort(err)) {
      fail(err);
      if (!(err instanceof ApiError && err.status)) setReachable(false);
    }
    return;
  }
  if (abort.signal.aborted) return;
  setReachable(true);
  if (first) {
    state.networkBbox = body.bbox;
    map.fitBounds(body.bbox);
  }
  const drawn = body.features.map((f) => {
    const value = f.properties.concentration_ugm3[0];
    const t = scalePosition(pollutant, value);
    return {
      coordinates: f.geometry.coordinates,
      name: f.properties.name,
      value,
      colour: colourAt(Number.isFinite(t) ? Math.round(t * COLOUR_STEPS) / COLOUR_STEPS : t),
    };
  });
  map.setStreets(drawn);
  streets.add(body.features);
  const names = streets.names();
  if (el.names.options.length !== names.length) {
    el.names.replaceChildren(
      ...names.map((name) => {
        const o = document.createElement("option");
        o.value = name;
        return o;
      }),
    );
  }
  const bboxLoaded = first ? body.bbox : bbox;
  state.loaded = {
    bbox: bboxLoaded,
    zoom,
    truncated: body.truncated,
    version: body.field.version,
  };
  el.canvas.dataset.fieldVersion = body.field.version;
  noteInfo(body.field);
  const shown = body.features.length;
  const note = body.truncated
    ? `Showing the ${shown} longest of ${body.total_features} streets; zoom in for all`
    : `${body.total_features} streets · field ${body.field.version}`;
  renderLegend(el.legend, pollutant, horizon, note);
  if (state.routedVersion !== null && state.routedVersion !== body.field.version) computeRoutes();
}

function setReachable(reachable) {
  if (state.reachable !== reachable) {
    state.reachable = reachable;
    renderBadge(el.badge, state.info, ageNow(), reachable);
  }
}

/** Which field is current: an empty-box request is the cheapest answer that says so. */
async function probe() {
  if (document.hidden) return;
  if (!state.networkBbox) {
    await loadField(); // the first load failed: try again
    return;
  }
  const [w, s, e, n] = state.networkBbox;
  const lon = (w + e) / 2;
  const lat = (s + n) / 2;
  let body;
  try {
    body = await getJson("v1/field", {
      bbox: bboxParam([lon, lat, lon + 1e-6, lat + 1e-6]),
      pollutant: state.pollutant,
      zoom: 0,
    });
  } catch (err) {
    setReachable(!(err instanceof ApiError) || err.status !== 0);
    return;
  }
  setReachable(true);
  setHorizons(body.horizons_min);
  noteInfo(body.field);
  if (!state.loaded || body.field.version !== state.loaded.version) await loadField();
}

function setHorizons(horizons) {
  const now = new Date();
  const options = horizons.map((h) => {
    const at = new Date(now.getTime() + h * 60000);
    return [String(h), h === 0 ? "Now" : `+${h} min · ${formatClock(at)}`];
  });
  const current = [...el.depart.options];
  if (current.map((o) => o.value).join() === options.map(([v]) => v).join()) {
    // Same choices: only the clock times move on (in place, so an open list stays open).
    current.forEach((o, k) => {
      if (o.textContent !== options[k][1]) o.textContent = options[k][1];
    });
    return;
  }
  const chosen = horizons.includes(state.horizonMin) ? state.horizonMin : 0;
  el.depart.replaceChildren(
    ...options.map(([value, label]) => {
      const o = document.createElement("option");
      o.value = value;
      o.textContent = label;
      return o;
    }),
  );
  el.depart.value = String(chosen);
  el.depart.disabled = horizons.length < 2;
  if (chosen !== state.horizonMin) {
    state.horizonMin = chosen;
    loadField();
    computeRoutes();
  }
}

// -- points and routes ------------------------------------------------------------------
function setPoints(origin, destination) {
  state.origin = origin;
  state.destination = destination;
  for (const [marker, point] of [
    [el.origin, origin],
    [el.destination, destination],
  ]) {
    map.setMarker(marker, point);
    marker.dataset.state = point ? "set" : "empty";
    if (point) {
      marker.dataset.lat = point.lat.toFixed(6);
      marker.dataset.lon = point.lon.toFixed(6);
    } else {
      delete marker.dataset.lat;
      delete marker.dataset.lon;
    }
  }
  el.from.value = origin ? pointText(origin) : "";
  el.to.value = destination ? pointText(destination) : "";
}

function pick(point) {
  clearError();
  if (!state.origin || state.destination) {
    clearRoutes();
    setPoints(point, null);
    say("Start set. Click the map again to set the end.");
  } else {
    setPoints(state.origin, point);
    computeRoutes();
  }
}

function clearRoutes() {
  routeAbort?.abort();
  state.routes = new Map();
  state.routedVersion = null;
  map.setRoutes([]);
  el.rows.replaceChildren();
  el.rows.hidden = true;
  el.key.hidden = true;
  el.empty.hidden = false;
  el.note.textContent = "";
  el.panel.dataset.state = "idle";
  el.panel.removeAttribute("aria-busy");
  delete el.panel.dataset.fieldVersion;
}

/** Ask for the three routes; the panel and the map show them once all have answered. */
async function computeRoutes() {
  const { origin, destination } = state;
  if (!origin || !destination) return;
  routeAbort?.abort();
  const abort = new AbortController();
  routeAbort = abort;
  const departAt = new Date(Date.now() + state.horizonMin * 60000);
  const pollutant = state.pollutant;
  state.routedVersion = state.loaded?.version ?? null;
  el.panel.dataset.state = "loading";
  el.panel.setAttribute("aria-busy", "true");
  say("Finding the shortest, balanced and least-exposure routes…");
  const { routes, body, errors } = await fetchRoutes(
    origin,
    destination,
    pollutant,
    departAt,
    abort.signal,
  );
  if (abort.signal.aborted) return;
  el.panel.removeAttribute("aria-busy");
  state.routes = routes;
  if (errors.length === ROUTE_KINDS.length) {
    clearRoutes();
    el.panel.dataset.state = "error";
    fail(new ApiError(errors[0]));
    say("");
    return;
  }
  clearError();
  if (errors.length) fail(new ApiError(errors[0]));
  el.panel.dataset.state = "ready";
  el.panel.dataset.fieldVersion = body.field.version;
  const from = body.waypoints[0].name || "the start";
  const to = body.waypoints[1].name || "the end";
  const when = state.horizonMin > 0 ? `departing ${formatClock(departAt)}` : "departing now";
  const field = `field ${body.field.version}`;
  el.note.textContent = `${pollutantLabel(pollutant)}, ${when}, ${field}: from ${from} to ${to}.`;
  say("Routes ready.");
  drawRoutes();
}

function drawRoutes() {
  el.empty.hidden = true;
  el.rows.hidden = false;
  el.key.hidden = false;
  renderRouteRows(el.rows, state.routes, state.selected, (profile) => {
    state.selected = profile;
    drawRoutes();
  });
  map.setRoutes(
    ROUTE_KINDS.filter((k) => state.routes.get(k.profile)?.feature).map((k) => ({
      coordinates: state.routes.get(k.profile).feature.geometry.coordinates,
      colour: k.colour,
      dash: k.dash,
      offsetPx: k.offsetPx,
      selected: k.profile === state.selected,
    })),
  );
}

// -- the tooltip --------------------------------------------------------------------------
function showTooltip(street, x, y) {
  if (!street) {
    el.tooltip.hidden = true;
    return;
  }
  const value = Number.isFinite(street.value) ? `${street.value.toFixed(1)} µg/m³` : "no value";
  el.tooltip.textContent = `${street.name || "Unnamed street"} · ${value}`;
  el.tooltip.style.transform = `translate(${Math.round(x + 14)}px, ${Math.round(y + 14)}px)`;
  el.tooltip.hidden = false;
}

// -- controls -----------------------------------------------------------------------------
el.form.addEventListener("submit", (e) => {
  e.preventDefault();
  clearError();
  const fromText = el.from.value.trim();
  const toText = el.to.value.trim();
  try {
    // A box still showing its point keeps it; anything typed is looked up again.
    const place = (p, text) => {
      if (!text) return null;
      return p && pointText(p) === text ? p : streets.resolve(text);
    };
    const origin = place(state.origin, fromText);
    const destination = place(state.destination, toText);
    if (!origin && !destination) throw new ApiError("Type a start and an end, or click the map.");
    clearRoutes();
    setPoints(origin, destination);
    if (origin && destination) {
      computeRoutes();
    } else {
      say(origin ? "Start set; now the end." : "End set; now the start.");
    }
  } catch (err) {
    fail(err);
  }
});

el.reset.addEventListener("click", () => {
  clearRoutes();
  setPoints(null, null);
  clearError();
  say("Cleared. Click the map to set the start.");
  el.canvas.focus();
});

el.pollutant.addEventListener("change", () => {
  state.pollutant = el.pollutant.value;
  renderLegend(el.legend, state.pollutant, state.horizonMin, "Loading…");
  loadField();
  computeRoutes();
});

el.depart.addEventListener("change", () => {
  state.horizonMin = Number(el.depart.value);
  loadField();
  computeRoutes();
});

$("#zoom-in").addEventListener("click", () => map.zoomAround(1));
$("#zoom-out").addEventListener("click", () => map.zoomAround(-1));
$("#zoom-fit").addEventListener("click", () => {
  if (state.networkBbox) map.fitBounds(state.networkBbox);
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) probe();
});

// -- start ----------------------------------------------------------------------------------
renderLegend(el.legend, state.pollutant, 0, "Loading the street network…");
renderScale(el.scale, map.metresPerPixel());
say("Loading the street network…");
await loadField();
if (state.loaded) say("Click the map to set the start.");
await probe();
setInterval(probe, POLL_MS);
setInterval(() => renderBadge(el.badge, state.info, ageNow(), state.reachable), 1000);
