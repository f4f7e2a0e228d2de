/** A shape as messages and tables print it: `[768, 2304]`. */
export const shapeText = (shape: readonly number[]): string => `[${shape.join(', ')}]`;
