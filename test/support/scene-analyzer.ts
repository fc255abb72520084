// Reads a generated scene image back into its attributes (background colour, object colour, position, size,
// shape), so prompt adherence is measured, not eyeballed. Test code: it knows the scene world of
// gpu-runner/src/scenes/scenes.ts and nothing else.
import {
  COLOUR_NAMES,
  COLOURS,
  type Colour,
  POSITION_CENTRES,
  POSITIONS,
  type Position,
  type Shape,
  type Size,
} from '../../gpu-runner/src/scenes/scenes.ts';

export interface SceneReading {
  background: Colour;
  /** null when no object stands out from the background. */
  colour: Colour | null;
  position: Position | null;
  size: Size | null;
  shape: Shape | null;
  /** Object pixels, centroid and bounding box, for messages and for tests that look at one region. */
  area: number;
  centroid: [number, number] | null;
  bbox: { x0: number; y0: number; x1: number; y1: number } | null;
}

export interface RgbImage {
  width: number;
  height: number;
  /** RGB, row-major, 3 bytes per pixel (an alpha channel, if any, already dropped). */
  data: Uint8Array;
}

const dist2 = (a: readonly number[], b: readonly number[]) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2;

export function nearestColour(rgb: readonly number[], exclude?: Colour): Colour {
  let best: Colour = COLOUR_NAMES[0];
  let bestD = Number.POSITIVE_INFINITY;
  for (const name of COLOUR_NAMES) {
    if (name === exclude) continue;
    const d = dist2(rgb, COLOURS[name]);
    if (d < bestD) {
      bestD = d;
      best = name;
    }
  }
  return best;
}

/** A pixel belongs to the object when it is this far (RGB distance) from the measured background colour. */
const OBJECT_DISTANCE = 70;
const MIN_OBJECT_PIXELS = 12;

/**
 * Analyzes one image. Background: the majority named colour of the border pixels, its RGB the mean of those
 * pixels. Object colour: majority vote of the nearest names (the background's excluded) of the pixels far from that
 * RGB; the object itself: every pixel nearer the object's RGB than the background's; position by the centroid's nearest grid cell, size by the bounding box, shape by
 * how much of the box the object fills and whether its mass sits low (a triangle's does).
 */
export function analyzeScene(image: RgbImage): SceneReading {
  const { width: w, height: h, data } = image;
  const px = (x: number, y: number) => {
    const o = (y * w + x) * 3;
    return [data[o], data[o + 1], data[o + 2]];
  };
  // The outermost 2-pixel frame; objects rarely reach it, and a majority vote ignores the ones that do.
  const votes = new Map<Colour, { n: number; sum: [number, number, number] }>();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (x >= 2 && x < w - 2 && y >= 2 && y < h - 2) continue;
      const rgb = px(x, y);
      const name = nearestColour(rgb);
      const v = votes.get(name) ?? { n: 0, sum: [0, 0, 0] };
      v.n++;
      for (let c = 0; c < 3; c++) v.sum[c] += rgb[c];
      votes.set(name, v);
    }
  }
  const [background, bgVote] = [...votes.entries()].sort((a, b) => b[1].n - a[1].n)[0];
  const bgRgb = bgVote.sum.map((s) => s / bgVote.n);

  // Pass 1: the pixels far from the background are the object's core; they vote its colour name and give its RGB.
  const colourVotes = new Map<Colour, number>();
  const core: { rgb: number[]; d: number }[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const rgb = px(x, y);
      const d = dist2(rgb, bgRgb);
      if (d < OBJECT_DISTANCE ** 2) continue;
      core.push({ rgb, d });
      const name = nearestColour(rgb, background);
      colourVotes.set(name, (colourVotes.get(name) ?? 0) + 1);
    }
  }
  if (core.length < MIN_OBJECT_PIXELS) {
    return { background, colour: null, position: null, size: null, shape: null, area: core.length, centroid: null, bbox: null };
  }
  const colour = [...colourVotes.entries()].sort((a, b) => b[1] - a[1])[0][0];
  // The object's RGB: the mean of the farther half of the core, so edge pixels do not pull it toward the background.
  core.sort((a, b) => b.d - a.d);
  const inner = core.slice(0, Math.ceil(core.length / 2));
  const objRgb = [0, 1, 2].map((c) => inner.reduce((s, p) => s + p.rgb[c], 0) / inner.length);
  // Pass 2: the object is every pixel nearer its RGB than the background's. A soft (decoded) edge is then cut at its
  // midpoint, where a sharp edge would be, instead of the object growing by its halo.
  let area = 0;
  let sx = 0;
  let sy = 0;
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const rgb = px(x, y);
      if (dist2(rgb, objRgb) >= dist2(rgb, bgRgb)) continue;
      mask[y * w + x] = 1;
      area++;
      sx += x + 0.5;
      sy += y + 0.5;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  if (area < MIN_OBJECT_PIXELS) {
    return { background, colour: null, position: null, size: null, shape: null, area, centroid: null, bbox: null };
  }
  // Scene coordinates are for 64x64; scale other sizes to them.
  const scale = 64 / w;
  const cx = (sx / area) * scale;
  const cy = (sy / area) * (64 / h);
  let position: Position = POSITIONS[0];
  let bestD = Number.POSITIVE_INFINITY;
  for (const p of POSITIONS) {
    const [px0, py0] = POSITION_CENTRES[p];
    const d = (px0 - cx) ** 2 + (py0 - cy) ** 2;
    if (d < bestD) {
      bestD = d;
      position = p;
    }
  }
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const extent = Math.max(bw, bh) * scale;
  const size: Size = extent < 21 ? 'small' : 'large';
  const fill = area / (bw * bh);
  // Mass in the top half of the box against the bottom half: ~1 for circles and squares, ~1/3 for a triangle.
  let top = 0;
  let bottom = 0;
  const mid = (y0 + y1 + 1) / 2;
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) if (mask[y * w + x]) y + 0.5 < mid ? top++ : bottom++;
  const lowMass = top / Math.max(1, bottom);
  const shape: Shape = lowMass < 0.65 || fill < 0.62 ? 'triangle' : fill > 0.87 ? 'square' : 'circle';
  return {
    background,
    colour,
    position,
    size,
    shape,
    area,
    centroid: [cx, cy],
    bbox: { x0, y0, x1, y1 },
  };
}
