// One term slot of the band entries (weights.wgsl), written once and instantiated by
// weight-kernels.ts for slots 0, 1 and 2 with SLOT replaced by the slot's number: WGSL cannot pass
// a storage array to a function, so each slot reads its own bindings. A slot covers k's
// first .. first + count - 1 (count 1..8) of a term of rank `rank`; the 8 k's are written out,
// those past the count clamped to a valid index and multiplied by 0.

@group(0) @binding(2 + 2 * SLOT) var<storage, read> band_lSLOT: array<f32>;
@group(0) @binding(3 + 2 * SLOT) var<storage, read> band_rSLOT: array<f32>;

// R[k, c..c+3]; 0 past the slot's count.
fn band_r_atSLOT(s: vec4u, c: u32, j: u32) -> vec4f {
  let n = params.band_countSLOT;
  let at = (params.band_firstSLOT + min(j, n - 1u)) * s.z + c * s.w;
  let r = vec4f(band_rSLOT[at], band_rSLOT[at + s.w], band_rSLOT[at + 2u * s.w], band_rSLOT[at + 3u * s.w]);
  return select(vec4f(0.0), r, j < n);
}

fn band_slot_rSLOT(c: u32) -> BandR {
  let s = band_strides(params.rankSLOT);
  return BandR(
    band_r_atSLOT(s, c, 0u), band_r_atSLOT(s, c, 1u), band_r_atSLOT(s, c, 2u), band_r_atSLOT(s, c, 3u),
    band_r_atSLOT(s, c, 4u), band_r_atSLOT(s, c, 5u), band_r_atSLOT(s, c, 6u), band_r_atSLOT(s, c, 7u),
  );
}

// L[row, first + j] for j = 0..7; 0 past the slot's count (so a NaN there cannot leak in).
fn band_l_atSLOT(s: vec4u, row: u32, j: u32) -> f32 {
  let n = params.band_countSLOT;
  let l = band_lSLOT[row * s.x + (params.band_firstSLOT + min(j, n - 1u)) * s.y];
  return select(0.0, l, j < n);
}

// acc + the slot's products L[row, k] · R[k, 8 columns], k ascending; R at columns 0..3 in ra
// and 4..7 in rb. (Past the count both factors are 0, and acc + 0 is acc.)
fn band_slot_sumSLOT(row: u32, ra: BandR, rb: BandR, acc: BandD) -> BandD {
  let s = band_strides(params.rankSLOT);
  let l0 = band_l_atSLOT(s, row, 0u);
  let l1 = band_l_atSLOT(s, row, 1u);
  let l2 = band_l_atSLOT(s, row, 2u);
  let l3 = band_l_atSLOT(s, row, 3u);
  let l4 = band_l_atSLOT(s, row, 4u);
  let l5 = band_l_atSLOT(s, row, 5u);
  let l6 = band_l_atSLOT(s, row, 6u);
  let l7 = band_l_atSLOT(s, row, 7u);
  return BandD(
    acc.lo + l0 * ra.k0 + l1 * ra.k1 + l2 * ra.k2 + l3 * ra.k3 + l4 * ra.k4 + l5 * ra.k5 + l6 * ra.k6 + l7 * ra.k7,
    acc.hi + l0 * rb.k0 + l1 * rb.k1 + l2 * rb.k2 + l3 * rb.k3 + l4 * rb.k4 + l5 * rb.k5 + l6 * rb.k6 + l7 * rb.k7,
  );
}

// d + scale · acc when the slot ends its term, else d.
fn band_slot_endSLOT(acc: BandD, d: BandD) -> BandD {
  let last = params.band_lastSLOT == 1u;
  let scale = params.scaleSLOT;
  return BandD(select(d.lo, d.lo + scale * acc.lo, last), select(d.hi, d.hi + scale * acc.hi, last));
}

// The sum the next slot continues: acc within a term, 0 after the term's last slot.
fn band_slot_carrySLOT(acc: BandD) -> BandD {
  let last = params.band_lastSLOT == 1u;
  return BandD(select(acc.lo, vec4f(0.0), last), select(acc.hi, vec4f(0.0), last));
}
