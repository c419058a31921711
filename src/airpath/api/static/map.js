// A small Web Mercator street map on a <canvas>: pan, zoom, coloured streets, routes.
//
// World coordinates are Web Mercator (EPSG:3857) normalised to 0..1 on both axes; at zoom
// z one world unit is 256·2^z CSS pixels, as in every slippy map. Everything is drawn
// from the street and route geometry the API sends: no tiles, nothing from elsewhere.

const TILE_PX = 256;
const MIN_ZOOM = 3;
const MAX_ZOOM = 19;
const MAX_LAT = 85.0511287798; // Web Mercator's square world
const CLICK_SLOP_PX = 5; // a press that moves less than this is a click, not a drag
const KEY_PAN_PX = 80;
const EARTH_CIRCUMFERENCE_M = 40075016.686;

export function toWorld(lon, lat) {
  const phi = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
  const s = Math.sin(phi);
  return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
}

export function fromWorld(x, y) {
  const n = Math.PI * (1 - 2 * y);
  return [x * 360 - 180, (Math.atan(Math.sinh(n)) * 180) / Math.PI];
}

/** A polyline's screen points moved ``d`` px to its left (mitred joins, capped). */
function offsetPolyline(pts, d) {
  const n = pts.length / 2;
  if (d === 0 || n < 2) return pts;
  const out = new Float64Array(pts.length);
  let px = 0;
  let py = 0; // unit normal of the previous segment
  for (let i = 0; i < n; i += 1) {
    let nx = 0;
    let ny = 0;
    if (i < n - 1) {
      const dx = pts[2 * i + 2] - pts[2 * i];
      const dy = pts[2 * i + 3] - pts[2 * i + 1];
      const len = Math.hypot(dx, dy) || 1;
      nx = -dy / len;
      ny = dx / len;
    } else {
      nx = px;
      ny = py;
    }
    if (i === 0) {
      px = nx;
      py = ny;
    }
    let mx = px + nx;
    let my = py + ny;
    const mlen = Math.hypot(mx, my);
    if (mlen < 1e-6) {
      mx = nx;
      my = ny;
    } else {
      mx /= mlen;
      my /= mlen;
    }
    const cos = Math.max(0.5, mx * nx + my * ny); // caps the mitre at 2 × d
    out[2 * i] = pts[2 * i] + (mx * d) / cos;
    out[2 * i + 1] = pts[2 * i + 1] + (my * d) / cos;
    px = nx;
    py = ny;
  }
  return out;
}

/** Distance in px from point p to segment ab (all in px). */
function segmentDistance(pxx, pxy, ax, ay, bx, by) {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.max(0, Math.min(1, ((pxx - ax) * dx + (pxy - ay) * dy) / len2)) : 0;
  return Math.hypot(pxx - (ax + t * dx), pxy - (ay + t * dy));
}

export class StreetMap {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{onPick?: (lat: number, lon: number) => void,
   *          onViewChange?: () => void,
   *          onHover?: (street: object | null, x: number, y: number) => void}} hooks
   */
  constructor(canvas, hooks = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.hooks = hooks;
    this.centre = [0.5, 0.5]; // until the caller fits the view to its data
    this.zoom = MIN_ZOOM;
    this.width = 0;
    this.height = 0;
    this.streets = []; // {world: Float64Array, colour, name, value}
    this.routes = []; // {world: Float64Array, colour, dash, offsetPx, selected}
    this.markers = []; // {element, lat, lon}
    this.frame = 0;
    this.pointers = new Map();
    this.resize({ notify: false }); // the caller is still being built: no hooks yet
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.bindInput();
  }

  // -- view ---------------------------------------------------------------------------
  get scale() {
    return TILE_PX * 2 ** this.zoom;
  }

  /** CSS pixels (relative to the canvas) of a WGS84 point. */
  project(lat, lon) {
    const [x, y] = toWorld(lon, lat);
    return this.worldToScreen(x, y);
  }

  worldToScreen(x, y) {
    const s = this.scale;
    return {
      x: (x - this.centre[0]) * s + this.width / 2,
      y: (y - this.centre[1]) * s + this.height / 2,
    };
  }

  /** The WGS84 point under CSS pixel (x, y) of the canvas. */
  unproject(x, y) {
    const s = this.scale;
    const [lon, lat] = fromWorld(
      this.centre[0] + (x - this.width / 2) / s,
      this.centre[1] + (y - this.height / 2) / s,
    );
    return { lat, lon };
  }

  /** The view as [west, south, east, north], degrees. */
  bounds() {
    const nw = this.unproject(0, 0);
    const se = this.unproject(this.width, this.height);
    return [nw.lon, se.lat, se.lon, nw.lat];
  }

  fitBounds([west, south, east, north], paddingPx = 24) {
    const [x0, y1] = toWorld(west, south);
    const [x1, y0] = toWorld(east, north);
    const w = Math.max(1, this.width - 2 * paddingPx);
    const h = Math.max(1, this.height - 2 * paddingPx);
    const zoom = Math.log2(Math.min(w / ((x1 - x0) * TILE_PX), h / ((y1 - y0) * TILE_PX)));
    this.setView([(x0 + x1) / 2, (y0 + y1) / 2], zoom);
  }

  setView(centre, zoom) {
    this.zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, zoom));
    this.centre = [Math.min(1, Math.max(0, centre[0])), Math.min(1, Math.max(0, centre[1]))];
    this.canvas.dataset.zoom = this.zoom.toFixed(2);
    this.requestRender();
    this.hooks.onViewChange?.();
  }

  panBy(dx, dy) {
    const s = this.scale;
    this.setView([this.centre[0] - dx / s, this.centre[1] - dy / s], this.zoom);
  }

  /** Zoom by ``delta`` levels keeping the point under CSS pixel (x, y) in place. */
  zoomAround(delta, x = this.width / 2, y = this.height / 2) {
    const zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.zoom + delta));
    const before = this.scale;
    const after = TILE_PX * 2 ** zoom;
    const wx = this.centre[0] + (x - this.width / 2) / before;
    const wy = this.centre[1] + (y - this.height / 2) / before;
    this.setView([wx - (x - this.width / 2) / after, wy - (y - this.height / 2) / after], zoom);
  }

  /** Metres per CSS pixel at the view's centre. */
  metresPerPixel() {
    const lat = fromWorld(this.centre[0], this.centre[1])[1];
    return (EARTH_CIRCUMFERENCE_M * Math.cos((lat * Math.PI) / 180)) / this.scale;
  }

  resize({ notify = true } = {}) {
    const rect = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.width = rect.width;
    this.height = rect.height;
    this.canvas.width = Math.round(rect.width * dpr);
    this.canvas.height = Math.round(rect.height * dpr);
    this.canvas.style.width = `${rect.width}px`;
    this.canvas.style.height = `${rect.height}px`;
    this.requestRender();
    if (notify) this.hooks.onViewChange?.();
  }

  // -- layers -------------------------------------------------------------------------
  /** @param {{coordinates: number[][], colour: string, name: string, value: number}[]} streets */
  setStreets(streets) {
    this.streets = streets.map((s) => {
      const world = new Float64Array(s.coordinates.length * 2);
      s.coordinates.forEach(([lon, lat], i) => {
        const [x, y] = toWorld(lon, lat);
        world[2 * i] = x;
        world[2 * i + 1] = y;
      });
      return { world, colour: s.colour, name: s.name, value: s.value };
    });
    this.requestRender();
  }

  /** @param {{coordinates: number[][], colour: string, dash?: number[], offsetPx?: number,
   *           selected?: boolean}[]} routes */
  setRoutes(routes) {
    this.routes = routes.map((r) => {
      const world = new Float64Array(r.coordinates.length * 2);
      r.coordinates.forEach(([lon, lat], i) => {
        const [x, y] = toWorld(lon, lat);
        world[2 * i] = x;
        world[2 * i + 1] = y;
      });
      return { ...r, world };
    });
    this.requestRender();
  }

  /** Keep a DOM element pinned to (lat, lon); null hides it. */
  setMarker(element, point) {
    this.markers = this.markers.filter((m) => m.element !== element);
    if (point) this.markers.push({ element, lat: point.lat, lon: point.lon });
    element.hidden = !point;
    this.placeMarkers();
  }

  // -- drawing ------------------------------------------------------------------------
  requestRender() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  streetWidthPx() {
    return Math.max(1, Math.min(9, 2.6 * 2 ** ((this.zoom - 15) / 2)));
  }

  render() {
    this.frame = 0;
    const { ctx } = this;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#eef0eb";
    ctx.fillRect(0, 0, this.width, this.height);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";

    const s = this.scale;
    const ox = this.width / 2 - this.centre[0] * s;
    const oy = this.height / 2 - this.centre[1] * s;
    const w = this.streetWidthPx();
    const [minX, minY, maxX, maxY] = [-w, -w, this.width + w, this.height + w];
    const visible = [];
    for (const street of this.streets) {
      const p = street.world;
      let x0 = Infinity;
      let y0 = Infinity;
      let x1 = -Infinity;
      let y1 = -Infinity;
      for (let i = 0; i < p.length; i += 2) {
        const x = p[i] * s + ox;
        const y = p[i + 1] * s + oy;
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
      if (x1 >= minX && x0 <= maxX && y1 >= minY && y0 <= maxY) visible.push(street);
    }

    // A white casing under all streets, then one path per colour: few strokes, crisp joins.
    const trace = (list) => {
      ctx.beginPath();
      for (const street of list) {
        const p = street.world;
        ctx.moveTo(p[0] * s + ox, p[1] * s + oy);
        for (let i = 2; i < p.length; i += 2) ctx.lineTo(p[i] * s + ox, p[i + 1] * s + oy);
      }
    };
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = w + 2;
    trace(visible);
    ctx.stroke();
    const byColour = new Map();
    for (const street of visible) {
      if (!byColour.has(street.colour)) byColour.set(street.colour, []);
      byColour.get(street.colour).push(street);
    }
    ctx.lineWidth = w;
    for (const [colour, list] of byColour) {
      ctx.strokeStyle = colour;
      trace(list);
      ctx.stroke();
    }
    this.canvas.dataset.segmentsDrawn = String(visible.length);

    const ordered = [...this.routes].sort((a, b) => Number(a.selected) - Number(b.selected));
    const rw = Math.max(3.5, Math.min(7, w + 1.5));
    for (const route of ordered) {
      const p = route.world;
      const screen = new Float64Array(p.length);
      for (let i = 0; i < p.length; i += 2) {
        screen[i] = p[i] * s + ox;
        screen[i + 1] = p[i + 1] * s + oy;
      }
      const pts = offsetPolyline(dedupe(screen), (route.offsetPx ?? 0) * (rw / 5));
      const width = route.selected ? rw + 1.5 : rw;
      const stroke = (colour, lineWidth, dash) => {
        ctx.setLineDash(dash);
        ctx.strokeStyle = colour;
        ctx.lineWidth = lineWidth;
        ctx.beginPath();
        ctx.moveTo(pts[0], pts[1]);
        for (let i = 2; i < pts.length; i += 2) ctx.lineTo(pts[i], pts[i + 1]);
        ctx.stroke();
      };
      stroke("rgba(255,255,255,0.95)", width + 3.5, []);
      stroke(route.colour, width, (route.dash ?? []).map((d) => d * width));
    }
    ctx.setLineDash([]);
    this.placeMarkers();
  }

  placeMarkers() {
    for (const m of this.markers) {
      const { x, y } = this.project(m.lat, m.lon);
      m.element.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px)`;
    }
  }

  /** The street nearest to CSS pixel (x, y), within ``radiusPx``; null if none. */
  streetAt(x, y, radiusPx = 8) {
    const s = this.scale;
    const ox = this.width / 2 - this.centre[0] * s;
    const oy = this.height / 2 - this.centre[1] * s;
    let best = null;
    let bestD = radiusPx;
    for (const street of this.streets) {
      const p = street.world;
      for (let i = 2; i < p.length; i += 2) {
        const d = segmentDistance(
          x, y, p[i - 2] * s + ox, p[i - 1] * s + oy, p[i] * s + ox, p[i + 1] * s + oy,
        );
        if (d < bestD) {
          bestD = d;
          best = street;
        }
      }
    }
    return best;
  }

  // -- input --------------------------------------------------------------------------
  bindInput() {
    const c = this.canvas;
    let press = null; // {x, y, moved}
    let pinch = null; // {distance, zoom}
    const local = (e) => {
      const r = c.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    c.addEventListener("pointerdown", (e) => {
      c.setPointerCapture(e.pointerId);
      this.pointers.set(e.pointerId, local(e));
      if (this.pointers.size === 1) {
        press = { ...local(e), moved: false };
      } else if (this.pointers.size === 2) {
        const [a, b] = [...this.pointers.values()];
        pinch = { distance: Math.hypot(a.x - b.x, a.y - b.y), zoom: this.zoom };
        press = null;
      }
    });
    c.addEventListener("pointermove", (e) => {
      const p = local(e);
      if (!this.pointers.has(e.pointerId)) {
        this.hooks.onHover?.(this.streetAt(p.x, p.y), p.x, p.y);
        return;
      }
      const prev = this.pointers.get(e.pointerId);
      this.pointers.set(e.pointerId, p);
      if (pinch && this.pointers.size === 2) {
        const [a, b] = [...this.pointers.values()];
        const d = Math.hypot(a.x - b.x, a.y - b.y);
        const target = pinch.zoom + Math.log2(d / pinch.distance);
        this.zoomAround(target - this.zoom, (a.x + b.x) / 2, (a.y + b.y) / 2);
        return;
      }
      if (press) {
        if (!press.moved && Math.hypot(p.x - press.x, p.y - press.y) >= CLICK_SLOP_PX) {
          press.moved = true;
          c.classList.add("dragging");
          this.hooks.onHover?.(null, 0, 0);
        }
        if (press.moved) this.panBy(p.x - prev.x, p.y - prev.y);
      }
    });
    const release = (e, cancelled) => {
      this.pointers.delete(e.pointerId);
      if (this.pointers.size < 2) pinch = null;
      if (press && !press.moved && !cancelled) {
        const p = local(e);
        const { lat, lon } = this.unproject(p.x, p.y);
        this.hooks.onPick?.(lat, lon);
      }
      press = null;
      c.classList.remove("dragging");
    };
    c.addEventListener("pointerup", (e) => release(e, false));
    c.addEventListener("pointercancel", (e) => release(e, true));
    c.addEventListener("pointerleave", () => this.hooks.onHover?.(null, 0, 0));
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const p = local(e);
        const lines = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 400 : 1;
        this.zoomAround((-e.deltaY * lines) / 300, p.x, p.y);
      },
      { passive: false },
    );
    c.addEventListener("keydown", (e) => {
      const pans = {
        ArrowLeft: [KEY_PAN_PX, 0],
        ArrowRight: [-KEY_PAN_PX, 0],
        ArrowUp: [0, KEY_PAN_PX],
        ArrowDown: [0, -KEY_PAN_PX],
      };
      if (e.key in pans) {
        this.panBy(...pans[e.key]);
      } else if (e.key === "+" || e.key === "=") {
        this.zoomAround(1);
      } else if (e.key === "-" || e.key === "_") {
        this.zoomAround(-1);
      } else if (e.key === "Enter" || e.key === " ") {
        const { lat, lon } = this.unproject(this.width / 2, this.height / 2);
        this.hooks.onPick?.(lat, lon);
      } else {
        return;
      }
      e.preventDefault();
    });
  }
}

/** Screen points without consecutive repeats (they have no direction to offset along). */
function dedupe(pts) {
  const out = [pts[0], pts[1]];
  for (let i = 2; i < pts.length; i += 2) {
    const dx = pts[i] - out[out.length - 2];
    const dy = pts[i + 1] - out[out.length - 1];
    if (dx * dx + dy * dy > 0.25) out.push(pts[i], pts[i + 1]);
  }
  return out;
}
