/**
 * CPU reference of the activation functions a GPT-2 MLP may use, by their transformers names.
 * Values are computed in double precision and rounded to f32 once.
 */

/** The activations implemented here (a config asking for any other is refused by its caller). */
export const ACTIVATIONS = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'gelu', 'relu', 'silu', 'swish', 'quick_gelu'] as const;

/** One of {@link ACTIVATIONS}. */
export type Activation = (typeof ACTIVATIONS)[number];

/** Whether `name` is an activation this package implements. */
export function isActivation(name: string): name is Activation {
  return (ACTIVATIONS as readonly string[]).includes(name);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** erf by Abramowitz and Stegun 7.1.26: |error| < 1.5e-7, finer than an f32 gelu output resolves. */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return sign * y;
}

/** One activation applied to one value. */
export function activate(kind: Activation, x: number): number {
  switch (kind) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      // The tanh approximation; `gelu_fast` factors the same polynomial differently.
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case 'gelu':
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'relu':
      return x > 0 ? x : 0;
    case 'silu':
    case 'swish':
      return x / (1 + Math.exp(-x));
    case 'quick_gelu':
      return x / (1 + Math.exp(-1.702 * x));
  }
}

/** Applies `kind` to every element of `x` in place. */
export function activationRef(kind: Activation, x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = activate(kind, x[i]!);
  return x;
}
