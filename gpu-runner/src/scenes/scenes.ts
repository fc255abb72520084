// The scene world the embedded model is trained on: 64x64 RGB images of one flat shape on a flat background, with
// captions in the words people type and the ground truth of every attribute. Deterministic by seed; the source of
// truth for the trainer's dataset, the adherence analyzer and the tests.

export const SCENE_SIZE = 64;

/** Named colours and the RGB the renderer paints them with (far apart, so a reader can tell them back). */
export const COLOURS = {
  red: [220, 30, 30],
  orange: [250, 140, 10],
  yellow: [250, 225, 30],
  green: [30, 160, 50],
  blue: [30, 70, 230],
  purple: [130, 40, 170],
  pink: [250, 130, 200],
  brown: [110, 65, 25],
  white: [245, 245, 245],
  black: [15, 15, 15],
} as const satisfies Record<string, readonly [number, number, number]>;
export type Colour = keyof typeof COLOURS;
export const COLOUR_NAMES = Object.keys(COLOURS) as Colour[];

export const SHAPES = ['circle', 'square', 'triangle'] as const;
export type Shape = (typeof SHAPES)[number];

export const SIZES = ['small', 'large'] as const;
export type Size = (typeof SIZES)[number];
/** Diameter (circle), side (square), base and height (triangle) in pixels, before jitter. */
export const SIZE_PIXELS: Record<Size, number> = { small: 14, large: 28 };

export const POSITIONS = [
  'centre',
  'left',
  'right',
  'top',
  'bottom',
  'top left',
  'top right',
  'bottom left',
  'bottom right',
] as const;
export type Position = (typeof POSITIONS)[number];
/** Object centre for each position, in pixels: a 3x3 grid at 1/4, 1/2 and 3/4 of the image. */
export const POSITION_CENTRES: Record<Position, [number, number]> = {
  centre: [32, 32],
  left: [16, 32],
  right: [48, 32],
  top: [32, 16],
  bottom: [32, 48],
  'top left': [16, 16],
  'top right': [48, 16],
  'bottom left': [16, 48],
  'bottom right': [48, 48],
};

export interface SceneSpec {
  background: Colour;
  colour: Colour;
  shape: Shape;
  size: Size;
  position: Position;
}

/** Object colour x shape pairs never shown in training: every green triangle, orange square and pink circle. */
export const HELD_OUT: readonly (readonly [Colour, Shape])[] = [
  ['green', 'triangle'],
  ['orange', 'square'],
  ['pink', 'circle'],
];

export function isHeldOut(spec: Pick<SceneSpec, 'colour' | 'shape'>): boolean {
  return HELD_OUT.some(([c, s]) => c === spec.colour && s === spec.shape);
}

/** mulberry32: a small seeded PRNG with the same sequence in every engine. */
export class SceneRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** A random scene; `heldOut` says whether held-out pairs may ('only' = must) appear. */
export function randomSpec(rng: SceneRandom, heldOut: 'exclude' | 'include' | 'only' = 'exclude'): SceneSpec {
  for (;;) {
    const background = rng.pick(COLOUR_NAMES);
    const colour = rng.pick(COLOUR_NAMES);
    if (colour === background) continue;
    const spec: SceneSpec = {
      background,
      colour,
      shape: rng.pick(SHAPES),
      size: rng.pick(SIZES),
      position: rng.pick(POSITIONS),
    };
    const held = isHeldOut(spec);
    if ((heldOut === 'exclude' && held) || (heldOut === 'only' && !held)) continue;
    return spec;
  }
}

export interface Geometry {
  cx: number;
  cy: number;
  /** Extent in pixels (diameter / side / base). */
  extent: number;
}

/** The nominal geometry plus a small seeded jitter (±2 px in place, ±1.5 px in size), so shapes are not pixel-identical. */
export function sceneGeometry(spec: SceneSpec, rng?: SceneRandom): Geometry {
  const [x, y] = POSITION_CENTRES[spec.position];
  const j = (a: number) => (rng ? (rng.next() * 2 - 1) * a : 0);
  const extent = SIZE_PIXELS[spec.size] + j(1.5);
  const half = extent / 2 + 1;
  const clamp = (v: number) => Math.min(SCENE_SIZE - half, Math.max(half, v));
  return { cx: clamp(x + j(2)), cy: clamp(y + j(2)), extent };
}

function inside(shape: Shape, g: Geometry, px: number, py: number): boolean {
  const dx = px - g.cx;
  const dy = py - g.cy;
  const h = g.extent / 2;
  switch (shape) {
    case 'circle':
      return dx * dx + dy * dy <= h * h;
    case 'square': {
      const s = h * 0.9; // a little smaller than the circle's box, so both cover similar areas
      return Math.abs(dx) <= s && Math.abs(dy) <= s;
    }
    case 'triangle': {
      // Apex up, base down; the half-width grows linearly from the apex (dy = -h) to the base (dy = +h).
      if (dy < -h || dy > h) return false;
      return Math.abs(dx) <= ((dy + h) / (2 * h)) * h;
    }
  }
}

/** Renders a scene as 64x64 RGB (HWC, uint8), edges antialiased with 4x4 supersampling. */
export function renderScene(spec: SceneSpec, geometry: Geometry = sceneGeometry(spec)): Uint8Array {
  const out = new Uint8Array(SCENE_SIZE * SCENE_SIZE * 3);
  const bg = COLOURS[spec.background];
  const fg = COLOURS[spec.colour];
  const reach = geometry.extent / 2 + 1;
  for (let y = 0; y < SCENE_SIZE; y++) {
    for (let x = 0; x < SCENE_SIZE; x++) {
      let cover = 0;
      if (Math.abs(x + 0.5 - geometry.cx) <= reach && Math.abs(y + 0.5 - geometry.cy) <= reach) {
        for (let sy = 0; sy < 4; sy++)
          for (let sx = 0; sx < 4; sx++) if (inside(spec.shape, geometry, x + (sx + 0.5) / 4, y + (sy + 0.5) / 4)) cover++;
      }
      const a = cover / 16;
      const o = (y * SCENE_SIZE + x) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = Math.round(bg[c] * (1 - a) + fg[c] * a);
    }
  }
  return out;
}

/** One paragraph for people: what the embedded model can draw and how to ask for it. */
export function describeSceneWorld(): string {
  return [
    `one flat shape on a flat background, 64x64: shapes ${SHAPES.join(', ')}; colours ${COLOUR_NAMES.join(', ')};`,
    `sizes ${SIZES.join(', ')}; positions ${POSITIONS.join(', ')}.`,
    'Ask as you would type it, e.g. "a small yellow triangle in the bottom right on a purple background" or',
    '"black background, big white square, left". Anything else comes out as some scene of that kind.',
    'It gets the background, colour, place and size right nearly always, the shape about four times in five',
    '(gpu-runner/models/sd-embedded-v5/MODEL_CARD.md).',
  ].join('\n  ');
}

// ---- captions ----

const SIZE_WORDS: Record<Size, readonly string[]> = { small: ['small', 'little'], large: ['large', 'big'] };

/** How a position is said inside a sentence ("a red circle in the top left") and as a bare phrase ("top left"). */
function positionPhrases(p: Position): { sentence: readonly string[]; bare: readonly string[] } {
  switch (p) {
    case 'centre':
      return { sentence: ['in the centre', 'in the center', 'in the middle'], bare: ['centre', 'center', 'middle'] };
    case 'left':
    case 'right':
      return { sentence: [`on the ${p}`], bare: [p, `on the ${p}`] };
    case 'top':
    case 'bottom':
      return { sentence: [`at the ${p}`], bare: [p, `at the ${p}`] };
    default:
      return { sentence: [`in the ${p}`, `in the ${p} corner`, `at the ${p}`], bare: [p, `${p} corner`] };
  }
}

const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');

export interface CaptionParts {
  size: boolean;
  position: boolean;
  background: boolean;
}

/** The canonical caption with every attribute, as the evaluation prompts it. */
export function fullCaption(spec: SceneSpec): string {
  return `${article(spec.size)} ${spec.size} ${spec.colour} ${spec.shape} ${positionPhrases(spec.position).sentence[0]} on ${article(spec.background)} ${spec.background} background`;
}

/** The short prompt most people type: colour and shape only ("a red circle"); size, place and background left free. */
export function shortCaption(spec: Pick<SceneSpec, 'colour' | 'shape'>): string {
  return `${article(spec.colour)} ${spec.colour} ${spec.shape}`;
}

/**
 * One random phrasing of a scene. Attributes may be left out (the image then shows whichever the scene has), so the
 * model learns that an unnamed size or place is free; the object's colour and shape are always named.
 */
export function randomCaption(spec: SceneSpec, rng: SceneRandom): string {
  const parts: CaptionParts = { size: rng.chance(0.7), position: rng.chance(0.8), background: rng.chance(0.85) };
  const size = parts.size ? `${rng.pick(SIZE_WORDS[spec.size])} ` : '';
  const object = `${size}${spec.colour} ${spec.shape}`;
  const pos = positionPhrases(spec.position);
  const bg = spec.background;
  const style = rng.int(4);
  if (style === 0 || !parts.background) {
    // "a small red circle in the top left on a blue background"
    const where = parts.position ? ` ${rng.pick(pos.sentence)}` : '';
    const on = parts.background ? ` on ${article(bg)} ${bg} background` : '';
    return `${article(object)} ${object}${where}${on}`;
  }
  if (style === 1) {
    // "blue background, small red circle, top left"
    return `${bg} background, ${object}${parts.position ? `, ${rng.pick(pos.bare)}` : ''}`;
  }
  if (style === 2) {
    // "a blue background with a red circle in the top left"
    return `${article(bg)} ${bg} background with ${article(object)} ${object}${parts.position ? ` ${rng.pick(pos.sentence)}` : ''}`;
  }
  // "small red circle top left, blue background"
  return `${object}${parts.position ? ` ${rng.pick(pos.bare)}` : ''}, ${bg} background`;
}

/** A full training example: the scene, its jittered rendering and `captions` phrasings, all from one seed. */
export function generateExample(seed: number, captions = 1, heldOut: 'exclude' | 'include' | 'only' = 'exclude') {
  const rng = new SceneRandom(seed);
  const spec = randomSpec(rng, heldOut);
  const geometry = sceneGeometry(spec, rng);
  const image = renderScene(spec, geometry);
  const texts = Array.from({ length: captions }, () => randomCaption(spec, rng));
  return { spec, geometry, image, captions: texts };
}
