/**
 * Where a JSON text goes past a bound on its nesting or on how many arrays and objects it holds,
 * found by reading it character by character, without parsing it: JSON.parse builds one array or
 * object for each "[" or "{" outside a string, and recurses once a level (a text nested a million
 * deep overflows the stack).
 */

const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export interface StructureBounds {
  readonly maxDepth: number;
  readonly maxContainers: number;
}

/** The first bound the text goes past, and where; undefined when it keeps both. */
export function structureBeyond(text: string, { maxDepth, maxContainers }: StructureBounds): { bound: 'depth' | 'containers'; position: number } | undefined {
  let containers = 0;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) {
      inString = true;
    } else if (code === OPEN_ARRAY || code === OPEN_OBJECT) {
      if (++depth > maxDepth) return { bound: 'depth', position: i };
      if (++containers > maxContainers) return { bound: 'containers', position: i };
    } else if (code === CLOSE_ARRAY || code === CLOSE_OBJECT) {
      depth--;
    }
  }
  return undefined;
}
