export { ACTIVATIONS, activate, activationRef, erf, isActivation, type Activation } from './activation.ref.js';
export { layerNormRef } from './layer-norm.ref.js';
export { matmulRef, type MatmulShape, type WeightOrder } from './matmul.ref.js';
export { causalAttentionRef, type CausalAttentionParams } from './attention.ref.js';
export { embeddingRef } from './embedding.ref.js';
