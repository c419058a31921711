// Places typed into the From/To boxes: "lat,lon", or a street name from the field.
//
// The /v1/field answer names the street of every segment, so the street names of the
// area loaded so far are searchable without a geocoder or any other service.

import { ApiError, parseLatLon } from "./api.js";

export class StreetIndex {
  constructor() {
    this.byName = new Map(); // lower-case name → {name, points: [[lon, lat], ...]}
  }

  /** Add the streets of a /v1/field answer; names met before stay, even out of view. */
  add(features) {
    const fresh = new Map();
    for (const f of features) {
      const name = f.properties.name;
      if (!name) continue;
      const key = name.toLowerCase();
      if (!fresh.has(key)) fresh.set(key, { name, points: [] });
      fresh.get(key).points.push(...f.geometry.coordinates);
    }
    for (const [key, street] of fresh) this.byName.set(key, street);
  }

  names() {
    return [...this.byName.values()].map((s) => s.name).sort((a, b) => a.localeCompare(b));
  }

  /** "lat,lon" or a street name → {lat, lon, label}; ApiError saying why not. */
  resolve(text) {
    const latlon = parseLatLon(text);
    if (latlon) return { ...latlon, label: "" };
    const key = text.trim().toLowerCase();
    const streets = [...this.byName.values()];
    const street =
      this.byName.get(key) ??
      streets.find((s) => s.name.toLowerCase().startsWith(key)) ??
      streets.find((s) => s.name.toLowerCase().includes(key));
    if (!key || !street) {
      throw new ApiError(
        `No street called “${text.trim()}” on the map: pick one from the list or type lat,lon.`,
      );
    }
    // The street's point nearest the mean of its points: on the street, near its middle.
    const n = street.points.length;
    const mx = street.points.reduce((a, p) => a + p[0], 0) / n;
    const my = street.points.reduce((a, p) => a + p[1], 0) / n;
    const d2 = (p) => (p[0] - mx) ** 2 + (p[1] - my) ** 2;
    const best = street.points.reduce((a, p) => (d2(p) < d2(a) ? p : a));
    return { lat: best[1], lon: best[0], label: street.name };
  }
}

/** What a From/To box shows for a point: its street, or its coordinates. */
export function pointText(p) {
  return p.label || `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}`;
}
