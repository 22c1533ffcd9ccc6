// A small SVG bar chart (no dependencies): one group of bars per metric, one
// bar per target, each metric scaled to its own largest value.
const COLORS = ['#2f7ed8', '#8bbc21', '#910000', '#f28f43'];

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** metrics: [{ name, unit, values: number[] }], series: string[] (one per value). */
export function barChartSvg(title, series, metrics) {
  const rowH = 22 * series.length + 26;
  const width = 760;
  const left = 190;
  const barMax = width - left - 120;
  const height = 60 + rowH * metrics.length + 22 * series.length;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  metrics.forEach((m, i) => {
    const y0 = 44 + i * rowH;
    const max = Math.max(...m.values.filter((v) => Number.isFinite(v)), 1e-9);
    out.push(`<text x="${left - 8}" y="${y0 + 16}" text-anchor="end" font-weight="bold">${esc(m.name)}</text>`);
    m.values.forEach((v, j) => {
      const y = y0 + 4 + j * 22;
      const w = Number.isFinite(v) ? Math.max(1, (v / max) * barMax) : 0;
      out.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="18" fill="${COLORS[j % COLORS.length]}"/>`);
      out.push(`<text x="${left + w + 6}" y="${y + 13}">${Number.isFinite(v) ? v.toFixed(2) : '-'} ${esc(m.unit)}</text>`);
    });
  });
  const ly = 44 + rowH * metrics.length + 4;
  series.forEach((s, j) => {
    out.push(`<rect x="${left}" y="${ly + j * 22}" width="14" height="14" fill="${COLORS[j % COLORS.length]}"/>`);
    out.push(`<text x="${left + 20}" y="${ly + j * 22 + 12}">${esc(s)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
