import type { PlanResult, TimelineEntry } from './capacity-plan.ts';

const WIDTH = 800;
const HEIGHT = 360;
const PAD = { left: 70, right: 60, top: 40, bottom: 40 };

/** A round number of at least `value`, for an axis' top. */
const niceCeiling = (value: number) => {
  const power = 10 ** Math.floor(Math.log10(Math.max(value, 1)));
  return [1, 2, 2.5, 5, 10].map((step) => step * power).find((top) => top >= value)!;
};

/**
 * The plan's timeline as an SVG: load and ready capacity (requests a second, left axis), replicas,
 * ready replicas and nodes (right axis), against time.
 */
export function timelineSvg(result: PlanResult): string {
  const { timeline } = result;
  const end = timeline.at(-1)!.t;
  const rpsTop = niceCeiling(Math.max(...timeline.map((e) => Math.max(e.load, e.capacity))));
  const countTop = niceCeiling(Math.max(...timeline.map((e) => Math.max(e.replicas, e.nodes))));
  const x = (t: number) => PAD.left + (t / end) * (WIDTH - PAD.left - PAD.right);
  const y = (value: number, top: number) => HEIGHT - PAD.bottom - (value / top) * (HEIGHT - PAD.top - PAD.bottom);
  const line = (value: (e: TimelineEntry) => number, top: number, colour: string, dashed = false) =>
    `<polyline fill="none" stroke="${colour}" stroke-width="2"${dashed ? ' stroke-dasharray="6 4"' : ''} points="${timeline.map((e) => `${x(e.t).toFixed(1)},${y(value(e), top).toFixed(1)}`).join(' ')}"/>`;
  const series = [
    ['load (rps)', '#d62728', (e: TimelineEntry) => e.load, rpsTop, false],
    ['ready capacity (rps)', '#1f77b4', (e: TimelineEntry) => e.capacity, rpsTop, false],
    ['replicas', '#2ca02c', (e: TimelineEntry) => e.replicas, countTop, true],
    ['ready replicas', '#17becf', (e: TimelineEntry) => e.readyReplicas, countTop, true],
    ['nodes', '#7f7f7f', (e: TimelineEntry) => e.nodes, countTop, true],
  ] as const;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>Load against ready capacity, replicas and nodes: peak ${result.peakReplicas} replicas, ${result.secondsOverCapacity} s over capacity</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    ...ticks.map((f) => `<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${y(f * rpsTop, rpsTop)}" y2="${y(f * rpsTop, rpsTop)}" stroke="#eee"/>`),
    ...ticks.map((f) => `<text x="${PAD.left - 6}" y="${y(f * rpsTop, rpsTop) + 4}" text-anchor="end">${Math.round(f * rpsTop)}</text>`),
    ...ticks.map((f) => `<text x="${WIDTH - PAD.right + 6}" y="${y(f * countTop, countTop) + 4}">${+(f * countTop).toFixed(1)}</text>`),
    ...ticks.map((f) => `<text x="${x(f * end)}" y="${HEIGHT - PAD.bottom + 16}" text-anchor="middle">${Math.round(f * end)} s</text>`),
    `<text x="${PAD.left - 6}" y="${PAD.top - 10}" text-anchor="end">rps</text>`,
    `<text x="${WIDTH - 4}" y="${PAD.top - 10}" text-anchor="end">pods, nodes</text>`,
    ...series.map(([, colour, value, top, dashed]) => line(value, top, colour, dashed)),
    ...series.map(([name, colour], i) => `<text x="${PAD.left + 10 + i * 140}" y="${PAD.top - 20}" fill="${colour}">${name}</text>`),
    '</svg>',
    '',
  ].join('\n');
}
