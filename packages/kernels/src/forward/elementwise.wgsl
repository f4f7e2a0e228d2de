// Elementwise kernels of the forward pass.
// `activation`: x[i] = act(x[i]) in place, kind: 0 gelu (tanh), 1 gelu (erf), 2 relu, 3 silu, 4 quick_gelu.
// `append_kv`: rows of the fused qkv [rows, 3·width] appended to the key and value caches at row `past`.
struct Params {
  count: u32,
  kind: u32,
  width: u32,
  past: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// erf by Abramowitz and Stegun 7.1.26, as the CPU twin.
fn erf_approx(x: f32) -> f32 {
  let s = sign(x);
  let v = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * v);
  let y = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-v * v);
  return s * y;
}

fn activate(kind: u32, x: f32) -> f32 {
  switch kind {
    case 0u: {
      // tanh(u) written through exp so that large |u| saturates instead of overflowing.
      let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
      let e = exp(-2.0 * abs(u));
      let th = sign(u) * (1.0 - e) / (1.0 + e);
      return 0.5 * x * (1.0 + th);
    }
    case 1u: {
      return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476));
    }
    case 2u: {
      return max(x, 0.0);
    }
    case 3u: {
      return x / (1.0 + exp(-x));
    }
    default: {
      return x / (1.0 + exp(-1.702 * x));
    }
  }
}

@compute @workgroup_size(64)
fn activation(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.count) {
    return;
  }
  a[i] = activate(p.kind, a[i]);
}

@compute @workgroup_size(64)
fn append_kv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.count) {
    return;
  }
  let row = i / p.width;
  let col = i % p.width;
  let src = row * 3u * p.width;
  b[(p.past + row) * p.width + col] = a[src + p.width + col];
  c[(p.past + row) * p.width + col] = a[src + 2u * p.width + col];
}
