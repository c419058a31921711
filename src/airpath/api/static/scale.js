// Colour scales of the pollution field, in µg/m³.
//
// Each pollutant's scale runs from 0 to twice the WHO 2021 24-hour air quality guideline
// (NO2 25, PM10 45, PM2.5 15 µg/m³), so the guideline sits at the middle (yellow) of every
// scale: green streets are below it, red ones at twice it or more.

export const POLLUTANTS = {
  no2: { label: "NO₂", guideline_ugm3: 25 },
  pm10: { label: "PM₁₀", guideline_ugm3: 45 },
  pm25: { label: "PM₂.₅", guideline_ugm3: 15 },
};

// Green → yellow → red, dark enough at the yellow end to read on a light background.
const STOPS = [
  [0.0, [26, 150, 65]],
  [0.25, [120, 190, 70]],
  [0.5, [230, 180, 20]],
  [0.75, [240, 110, 50]],
  [1.0, [165, 0, 38]],
];
const NO_DATA = "#9aa0a6";

export function pollutantLabel(pollutant) {
  return POLLUTANTS[pollutant]?.label ?? pollutant.toUpperCase();
}

/** The [0, max] µg/m³ range of a pollutant's scale. */
export function scaleDomain(pollutant) {
  const guideline = POLLUTANTS[pollutant]?.guideline_ugm3 ?? 25;
  return [0, 2 * guideline];
}

/** Position 0..1 of a concentration on the scale (clamped); NaN for no value. */
export function scalePosition(pollutant, concentration_ugm3) {
  if (!Number.isFinite(concentration_ugm3)) return Number.NaN;
  const [lo, hi] = scaleDomain(pollutant);
  return Math.min(1, Math.max(0, (concentration_ugm3 - lo) / (hi - lo)));
}

export function colourAt(t) {
  if (!Number.isFinite(t)) return NO_DATA;
  for (let k = 1; k < STOPS.length; k += 1) {
    const [t1, c1] = STOPS[k];
    if (t <= t1) {
      const [t0, c0] = STOPS[k - 1];
      const f = (t - t0) / (t1 - t0);
      const rgb = c0.map((v, i) => Math.round(v + f * (c1[i] - v)));
      return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
    }
  }
  const last = STOPS[STOPS.length - 1][1];
  return `rgb(${last[0]},${last[1]},${last[2]})`;
}

/** A CSS linear-gradient of the scale, for the legend bar. */
export function cssGradient() {
  const parts = [];
  for (let k = 0; k <= 20; k += 1) parts.push(`${colourAt(k / 20)} ${k * 5}%`);
  return `linear-gradient(to right, ${parts.join(", ")})`;
}
