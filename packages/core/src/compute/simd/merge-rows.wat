;; The CPU merge's inner loop in WebAssembly SIMD: W[row, col] = f32(W[row, col] + scale · Σ_k
;; L[row, k] · R[k, col]) over a block of W's rows, in place, with exactly the operations of core's
;; loraMergeRowsInPlace (compute/cpu-merge.ts) for every element: the sum starts at +0 and adds
;; each product in f64 in ascending k (a multiply and an add, never fused), then f64 W + scale · sum,
;; rounded once to f32. Two columns share one f64x2 lane pair and four pairs run side by side, so
;; the additions of one element stay in order while the CPU overlaps the chains of eight.
;;
;; Memory, laid out by the caller (compute/simd/merge-rows.ts):
;;   $rp: R in column pairs, f64: pair p, k at byte (p·rank + k)·16, lane 0 = column 2p, lane 1 =
;;        column 2p+1 (0 past the last column);
;;   $lv: scratch for one row's L[row, k], each k splatted to f64x2 (rank · 16 bytes);
;;   $l:  L[first row of the block, 0] as f32; L[row, k] at $l + (row·$lRow + k·$lK)·4;
;;   $w:  the block's rows of W, f32, row-major with $cols columns.
;; Returns the count of NaN and ±Inf values written (the caller redoes a block that has any).
(module
  (memory (export "memory") 1)
  (func (export "mergeRows")
    (param $w i32) (param $rows i32) (param $cols i32)
    (param $l i32) (param $lRow i32) (param $lK i32)
    (param $rp i32) (param $rank i32) (param $scale f64) (param $lv i32)
    (result i32)
    (local $row i32) (local $k i32) (local $p i32) (local $pairs i32) (local $fullPairs i32)
    (local $wp i32) (local $lrow i32) (local $rpp i32) (local $lvp i32)
    (local $stride i32) (local $stride2 i32) (local $stride3 i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $lk v128)
    (local $out v128) (local $sc v128) (local $nf v128)
    (local $sum f64) (local $v f32) (local $tailNf i32)
    (local.set $sc (f64x2.splat (local.get $scale)))
    (local.set $fullPairs (i32.shr_u (local.get $cols) (i32.const 1)))
    (local.set $pairs (i32.shr_u (i32.add (local.get $cols) (i32.const 1)) (i32.const 1)))
    (local.set $stride (i32.shl (local.get $rank) (i32.const 4)))
    (local.set $stride2 (i32.shl (local.get $stride) (i32.const 1)))
    (local.set $stride3 (i32.add (local.get $stride2) (local.get $stride)))
    (local.set $wp (local.get $w))
    (local.set $lrow (local.get $l))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
        ;; This row's L[row, k], each splatted.
        (local.set $k (i32.const 0))
        (block $lDone
          (loop $lLoop
            (br_if $lDone (i32.ge_u (local.get $k) (local.get $rank)))
            (v128.store
              (i32.add (local.get $lv) (i32.shl (local.get $k) (i32.const 4)))
              (f64x2.splat (f64.promote_f32 (f32.load
                (i32.add (local.get $lrow) (i32.shl (i32.mul (local.get $k) (local.get $lK)) (i32.const 2)))))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $lLoop)))
        (local.set $p (i32.const 0))
        (local.set $rpp (local.get $rp))
        ;; Four column pairs at a time.
        (block $quadDone
          (loop $quadLoop
            (br_if $quadDone (i32.gt_u (i32.add (local.get $p) (i32.const 4)) (local.get $fullPairs)))
            (local.set $s0 (f64x2.splat (f64.const 0)))
            (local.set $s1 (f64x2.splat (f64.const 0)))
            (local.set $s2 (f64x2.splat (f64.const 0)))
            (local.set $s3 (f64x2.splat (f64.const 0)))
            (local.set $lvp (local.get $lv))
            (local.set $k (local.get $rank))
            (block $kDone
              (loop $kLoop
                (br_if $kDone (i32.eqz (local.get $k)))
                (local.set $lk (v128.load (local.get $lvp)))
                (local.set $s0 (f64x2.add (local.get $s0) (f64x2.mul (v128.load (local.get $rpp)) (local.get $lk))))
                (local.set $s1 (f64x2.add (local.get $s1) (f64x2.mul (v128.load (i32.add (local.get $rpp) (local.get $stride))) (local.get $lk))))
                (local.set $s2 (f64x2.add (local.get $s2) (f64x2.mul (v128.load (i32.add (local.get $rpp) (local.get $stride2))) (local.get $lk))))
                (local.set $s3 (f64x2.add (local.get $s3) (f64x2.mul (v128.load (i32.add (local.get $rpp) (local.get $stride3))) (local.get $lk))))
                (local.set $rpp (i32.add (local.get $rpp) (i32.const 16)))
                (local.set $lvp (i32.add (local.get $lvp) (i32.const 16)))
                (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                (br $kLoop)))
            (local.set $rpp (i32.add (local.get $rpp) (local.get $stride3)))
            (local.set $out (f32x4.demote_f64x2_zero (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $wp))) (f64x2.mul (local.get $sc) (local.get $s0)))))
            (v128.store64_lane 0 (local.get $wp) (local.get $out))
            (local.set $nf (i32x4.sub (local.get $nf) (f32x4.ne (f32x4.sub (local.get $out) (local.get $out)) (v128.const i32x4 0 0 0 0))))
            (local.set $out (f32x4.demote_f64x2_zero (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $wp))) (f64x2.mul (local.get $sc) (local.get $s1)))))
            (v128.store64_lane offset=8 0 (local.get $wp) (local.get $out))
            (local.set $nf (i32x4.sub (local.get $nf) (f32x4.ne (f32x4.sub (local.get $out) (local.get $out)) (v128.const i32x4 0 0 0 0))))
            (local.set $out (f32x4.demote_f64x2_zero (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero offset=16 (local.get $wp))) (f64x2.mul (local.get $sc) (local.get $s2)))))
            (v128.store64_lane offset=16 0 (local.get $wp) (local.get $out))
            (local.set $nf (i32x4.sub (local.get $nf) (f32x4.ne (f32x4.sub (local.get $out) (local.get $out)) (v128.const i32x4 0 0 0 0))))
            (local.set $out (f32x4.demote_f64x2_zero (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero offset=24 (local.get $wp))) (f64x2.mul (local.get $sc) (local.get $s3)))))
            (v128.store64_lane offset=24 0 (local.get $wp) (local.get $out))
            (local.set $nf (i32x4.sub (local.get $nf) (f32x4.ne (f32x4.sub (local.get $out) (local.get $out)) (v128.const i32x4 0 0 0 0))))
            (local.set $wp (i32.add (local.get $wp) (i32.const 32)))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (br $quadLoop)))
        ;; The remaining whole pairs, one at a time.
        (block $pairDone
          (loop $pairLoop
            (br_if $pairDone (i32.ge_u (local.get $p) (local.get $fullPairs)))
            (local.set $s0 (f64x2.splat (f64.const 0)))
            (local.set $lvp (local.get $lv))
            (local.set $k (local.get $rank))
            (block $k1Done
              (loop $k1Loop
                (br_if $k1Done (i32.eqz (local.get $k)))
                (local.set $s0 (f64x2.add (local.get $s0) (f64x2.mul (v128.load (local.get $rpp)) (v128.load (local.get $lvp)))))
                (local.set $rpp (i32.add (local.get $rpp) (i32.const 16)))
                (local.set $lvp (i32.add (local.get $lvp) (i32.const 16)))
                (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                (br $k1Loop)))
            (local.set $out (f32x4.demote_f64x2_zero (f64x2.add (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $wp))) (f64x2.mul (local.get $sc) (local.get $s0)))))
            (v128.store64_lane 0 (local.get $wp) (local.get $out))
            (local.set $nf (i32x4.sub (local.get $nf) (f32x4.ne (f32x4.sub (local.get $out) (local.get $out)) (v128.const i32x4 0 0 0 0))))
            (local.set $wp (i32.add (local.get $wp) (i32.const 8)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $pairLoop)))
        ;; An odd last column, in scalar f64 (lane 0 of the last pair).
        (if (i32.lt_u (local.get $fullPairs) (local.get $pairs))
          (then
            (local.set $sum (f64.const 0))
            (local.set $lvp (local.get $lv))
            (local.set $k (local.get $rank))
            (block $tDone
              (loop $tLoop
                (br_if $tDone (i32.eqz (local.get $k)))
                (local.set $sum (f64.add (local.get $sum) (f64.mul (f64.load (local.get $rpp)) (f64.load (local.get $lvp)))))
                (local.set $rpp (i32.add (local.get $rpp) (i32.const 16)))
                (local.set $lvp (i32.add (local.get $lvp) (i32.const 16)))
                (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                (br $tLoop)))
            (local.set $v (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (local.get $wp))) (f64.mul (local.get $scale) (local.get $sum)))))
            (f32.store (local.get $wp) (local.get $v))
            (if (f32.ne (f32.sub (local.get $v) (local.get $v)) (f32.const 0))
              (then (local.set $tailNf (i32.add (local.get $tailNf) (i32.const 1)))))
            (local.set $wp (i32.add (local.get $wp) (i32.const 4)))))
        (local.set $lrow (i32.add (local.get $lrow) (i32.shl (local.get $lRow) (i32.const 2))))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $rowLoop)))
    (i32.add (local.get $tailNf) (i32.add (i32x4.extract_lane 0 (local.get $nf)) (i32x4.extract_lane 1 (local.get $nf))))))
