// Time-series charts drawn as inline SVG: connections/s and bytes/s of
// one route over the polled history, each line scaled to its own peak.
import {h, formatBytes, formatRate} from './ui.js';

// chart draws the history [{t, cps, bps}] in a w×h SVG. The accessible
// name states the latest figures.
export function chart(hist, w, ht, withAxis) {
  const last = hist[hist.length - 1] || {cps: 0, bps: 0};
  const label = `connections ${formatRate(last.cps)}/s, ${formatBytes(last.bps)}/s`;
  const svg = h('svg', {width: w, height: ht, viewBox: `0 0 ${w} ${ht}`, role: 'img', 'aria-label': label},
    h('title', {}, label));
  const pad = withAxis ? 14 : 2;
  const line = (key, cls) => {
    const peak = Math.max(1e-9, ...hist.map((p) => p[key]));
    const n = Math.max(hist.length - 1, 1);
    const pts = hist.map((p, i) => {
      const x = pad + (i / n) * (w - 2 * pad);
      const y = ht - pad - (p[key] / peak) * (ht - 2 * pad);
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    if (pts.length === 1) pts.push((w - pad) + ',' + pts[0].split(',')[1]);
    svg.append(h('polyline', {class: cls, points: pts.join(' ')}));
    return peak;
  };
  if (hist.length) {
    const pc = line('cps', 'conn');
    const pb = line('bps', 'bytes');
    if (withAxis) {
      svg.append(h('text', {class: 'axis', x: pad, y: 11}, `peak ${formatRate(pc)} conn/s · ${formatBytes(pb)}/s`));
      const mins = Math.max(1, Math.round((hist[hist.length - 1].t - hist[0].t) / 60000));
      svg.append(h('text', {class: 'axis', x: pad, y: ht - 2}, `last ${mins} min`));
    }
  }
  return svg;
}
