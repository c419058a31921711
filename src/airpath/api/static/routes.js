// The three routes the page compares, asked of GET /v1/route at once.

import { ApiError, getJson, isoWithOffset } from "./api.js";
import { ROUTE_KINDS } from "./panel.js";

/**
 * Shortest, balanced (the API's default balance of dose and time) and least-exposure
 * routes between two points, departing at ``departAt``.
 * @returns {Promise<{routes: Map<string, {feature?: object, error?: string}>,
 *                    body: object | null, errors: string[]}>}
 *   ``body`` is one successful answer (waypoints, field, depart), null if none succeeded.
 */
export async function fetchRoutes(origin, destination, pollutant, departAt, signal) {
  const params = {
    from: `${origin.lat.toFixed(6)},${origin.lon.toFixed(6)}`,
    to: `${destination.lat.toFixed(6)},${destination.lon.toFixed(6)}`,
    pollutant,
    depart: isoWithOffset(departAt),
  };
  const answers = await Promise.allSettled(
    ROUTE_KINDS.map((k) => getJson("v1/route", { ...params, profile: k.profile }, signal)),
  );
  const routes = new Map();
  const errors = [];
  let body = null;
  ROUTE_KINDS.forEach((k, i) => {
    const a = answers[i];
    if (a.status === "fulfilled") {
      routes.set(k.profile, { feature: a.value.features[0] });
      body = body ?? a.value;
    } else {
      const message = a.reason instanceof ApiError ? a.reason.message : String(a.reason);
      routes.set(k.profile, { error: message });
      errors.push(message);
    }
  });
  return { routes, body, errors };
}
