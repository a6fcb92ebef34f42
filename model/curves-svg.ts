import type { CurvePoint } from './classification-metrics.ts';

const PANEL = 340;
const PAD = { left: 56, right: 20, top: 44, bottom: 46 };
const WIDTH = 2 * PANEL;
const HEIGHT = 360;

interface Axes {
  readonly title: string;
  readonly x: { readonly label: string; readonly of: (p: CurvePoint) => number };
  readonly y: { readonly label: string; readonly of: (p: CurvePoint) => number };
}

/** One panel: a curve on [0, 1]², its grid, axes and the operating point. */
function panel(left: number, { title, x, y }: Axes, points: readonly CurvePoint[], at: CurvePoint): string[] {
  const inner = { w: PANEL - PAD.left - PAD.right, h: HEIGHT - PAD.top - PAD.bottom };
  const px = (value: number) => (left + PAD.left + value * inner.w).toFixed(1);
  const py = (value: number) => (HEIGHT - PAD.bottom - value * inner.h).toFixed(1);
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return [
    `<text x="${left + PANEL / 2}" y="22" text-anchor="middle" font-weight="bold">${title}</text>`,
    ...ticks.map((t) => `<line x1="${px(0)}" x2="${px(1)}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/><line x1="${px(t)}" x2="${px(t)}" y1="${py(0)}" y2="${py(1)}" stroke="#eee"/>`),
    ...ticks.map((t) => `<text x="${+px(0) - 6}" y="${+py(t) + 4}" text-anchor="end">${t}</text><text x="${px(t)}" y="${+py(0) + 16}" text-anchor="middle">${t}</text>`),
    `<text x="${px(0.5)}" y="${HEIGHT - 8}" text-anchor="middle">${x.label}</text>`,
    `<text x="${left + 14}" y="${py(0.5)}" text-anchor="middle" transform="rotate(-90 ${left + 14} ${py(0.5)})">${y.label}</text>`,
    `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${points.map((p) => `${px(x.of(p))},${py(y.of(p))}`).join(' ')}"/>`,
    `<circle cx="${px(x.of(at))}" cy="${py(y.of(at))}" r="5" fill="#d62728"/>`,
  ];
}

/**
 * The ROC and precision-recall curves side by side, each with the model's threshold marked: what
 * `npm run evaluate -- --curves DIR` writes beside curves.json.
 */
export function curvesSvg(points: readonly CurvePoint[], threshold: number, caption: string): string {
  // The operating point: the first point whose threshold is at or below the model's.
  const at = points.find((p) => p.threshold <= threshold) ?? points.at(-1)!;
  const rate = (value: number) => `${(100 * value).toFixed(1)}%`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT + 24}" viewBox="0 0 ${WIDTH} ${HEIGHT + 24}" font-family="sans-serif" font-size="12">`,
    `<title>${caption}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT + 24}" fill="white"/>`,
    ...panel(0, { title: 'ROC', x: { label: 'false-positive rate', of: (p) => p.falsePositiveRate }, y: { label: 'recall (true-positive rate)', of: (p) => p.recall } }, points, at),
    ...panel(PANEL, { title: 'Precision-recall', x: { label: 'recall', of: (p) => p.recall }, y: { label: 'precision', of: (p) => p.precision } }, points, at),
    `<text x="${WIDTH / 2}" y="${HEIGHT + 16}" text-anchor="middle" fill="#d62728">● the threshold ${+threshold.toPrecision(4)}: false-positive rate ${rate(at.falsePositiveRate)}, recall ${rate(at.recall)}, precision ${rate(at.precision)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
