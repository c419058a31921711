// DOM rendering of the side panel and the map overlays: route rows, the freshness badge,
// the legend and the scale bar. Pure functions of what they are given.

import { cssGradient, POLLUTANTS, pollutantLabel, scaleDomain } from "./scale.js";

/** The three routes the page asks for, in the order the panel lists them. */
export const ROUTE_KINDS = [
  { profile: "shortest", name: "Shortest", colour: "#3d4654", dash: [1, 1.9], offsetPx: -5 },
  { profile: "balanced", name: "Balanced", colour: "#8a3ffc", offsetPx: 0 },
  { profile: "least_exposure", name: "Least exposure", colour: "#0f62fe", offsetPx: 5 },
];

const DEFAULT_AGE_LIMIT_S = 120; // amber past this age when the server sets no limit
const MINUS = "−";

function signed(pct) {
  const rounded = Math.round(pct);
  if (rounded === 0) return "±0 %";
  return `${rounded > 0 ? "+" : MINUS}${Math.abs(rounded)} %`;
}

export function formatAge(seconds) {
  if (!Number.isFinite(seconds)) return "age unknown";
  const s = Math.max(0, seconds);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function formatDose(ug) {
  return ug < 10 ? ug.toFixed(2) : ug.toFixed(1);
}

export function formatClock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function stat(value, unit) {
  const span = document.createElement("span");
  span.className = "stat";
  const b = document.createElement("b");
  b.textContent = value;
  span.append(b, ` ${unit}`);
  return span;
}

function span(className, text) {
  const s = document.createElement("span");
  s.className = className;
  s.textContent = text;
  return s;
}

/**
 * One card per route: its name, distance, time and dose, and its change vs the shortest.
 * ``results`` maps a profile to {feature} or {error}; a card's button selects the route.
 * @param {HTMLOListElement} list
 */
export function renderRouteRows(list, results, selected, onSelect) {
  list.replaceChildren();
  for (const kind of ROUTE_KINDS) {
    const result = results.get(kind.profile);
    if (!result) continue;
    const li = document.createElement("li");
    li.dataset.testid = "route-row";
    li.dataset.profile = kind.profile;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "route-card";
    button.setAttribute("aria-pressed", String(kind.profile === selected));
    button.addEventListener("click", () => onSelect(kind.profile));
    const swatch = span(`swatch swatch-${kind.profile}`, "");
    swatch.setAttribute("aria-hidden", "true");
    button.append(swatch, span("route-title", kind.name));
    if (result.error) {
      li.dataset.state = "error";
      button.append(span("route-error", result.error));
    } else {
      const p = result.feature.properties;
      li.dataset.state = "ready";
      li.dataset.distanceM = String(p.distance);
      li.dataset.durationS = String(p.duration);
      li.dataset.doseUg = String(p.dose_ug);
      li.dataset.dosePct = String(p.vs_shortest.dose_pct);
      li.dataset.distancePct = String(p.vs_shortest.distance_pct);
      button.title = p.label;
      if (kind.profile === "shortest") {
        button.append(span("route-delta muted", "reference"));
      } else {
        const better = p.vs_shortest.dose_pct < -0.5 ? " better" : "";
        button.append(span(`route-delta${better}`, `${signed(p.vs_shortest.dose_pct)} dose`));
      }
      const stats = span("route-stats", "");
      stats.append(
        stat((p.distance / 1000).toFixed(2), "km"),
        stat(String(Math.max(1, Math.round(p.duration / 60))), "min"),
        stat(formatDose(p.dose_ug), "µg"),
      );
      button.append(stats);
      if (kind.profile !== "shortest") {
        button.append(span("route-delta-sub", `${signed(p.vs_shortest.distance_pct)} distance`));
      }
    }
    if (kind.profile === selected) li.classList.add("selected");
    li.append(button);
    list.append(li);
  }
}

/** How fresh the field is: a level for the badge's colour and a line of text. */
export function freshness(info, ageS, reachable) {
  if (!info) return { level: "loading", text: "Connecting…" };
  const version = `field ${info.version}`;
  const age = `${formatAge(ageS)} old`;
  if (!reachable) return { level: "offline", text: `Offline · ${version}, ${age}` };
  if (info.source === "prior") return { level: "ageing", text: "Annual averages · no live data" };
  // The server's limit decides staleness; without one, a field only turns amber.
  const limit = info.max_age_s;
  if (info.stale || (limit != null && ageS > limit)) {
    return { level: "stale", text: `Stale · ${version} · ${age}` };
  }
  if (ageS > (limit != null ? limit / 2 : DEFAULT_AGE_LIMIT_S)) {
    return { level: "ageing", text: `Ageing · ${version} · ${age}` };
  }
  return { level: "fresh", text: `Live · ${version} · ${age}` };
}

export function renderBadge(badge, info, ageS, reachable) {
  const { level, text } = freshness(info, ageS, reachable);
  badge.dataset.level = level;
  if (info) {
    badge.dataset.version = info.version;
    badge.dataset.ageS = Number.isFinite(ageS) ? ageS.toFixed(1) : "";
    const parts = [`Field ${info.version}, valid at ${new Date(info.valid_at).toLocaleString()}`];
    if (info.model_version) parts.push(`model ${info.model_version}`);
    if (info.freshness_s != null) {
      parts.push(`published ${formatAge(info.freshness_s)} after its newest reading`);
    }
    if (info.max_age_s != null) parts.push(`server limit ${formatAge(info.max_age_s)}`);
    badge.title = parts.join("; ");
  }
  const span = badge.querySelector(".badge-text");
  if (span.textContent !== text) span.textContent = text;
}

export function renderLegend(legend, pollutant, horizonMin, note) {
  const [, hi] = scaleDomain(pollutant);
  const guideline = POLLUTANTS[pollutant]?.guideline_ugm3;
  const when = horizonMin > 0 ? `forecast +${horizonMin} min` : "now";
  const title = `${pollutantLabel(pollutant)} · µg/m³ · ${when}`;
  legend.querySelector(".legend-title").textContent = title;
  legend.querySelector(".legend-bar").style.backgroundImage = cssGradient();
  const ticks = legend.querySelector(".legend-ticks");
  const labels = [
    ["0", 0],
    [guideline ? `${guideline} WHO 24 h` : `${hi / 2}`, 0.5],
    [`${hi}+`, 1],
  ];
  ticks.replaceChildren(
    ...labels.map(([text, at]) => {
      const span = document.createElement("span");
      span.textContent = text;
      span.style.left = `${at * 100}%`;
      span.className = at === 0 ? "first" : at === 1 ? "last" : "";
      return span;
    }),
  );
  legend.querySelector(".legend-note").textContent = note;
}

/** A scale bar of 1, 2 or 5 × 10^k metres, at most ``maxPx`` wide. */
export function renderScale(scale, metresPerPx, maxPx = 110) {
  const max = metresPerPx * maxPx;
  const pow = 10 ** Math.floor(Math.log10(max));
  const nice = [5, 2, 1].map((f) => f * pow).find((m) => m <= max) ?? pow;
  scale.querySelector(".scale-bar").style.width = `${(nice / metresPerPx).toFixed(1)}px`;
  const label = nice >= 1000 ? `${nice / 1000} km` : `${nice} m`;
  scale.querySelector(".scale-label").textContent = label;
}
