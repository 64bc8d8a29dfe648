//! Otsu's threshold from a histogram, exactly as scikit-image `threshold_otsu` computes it.
//!
//! For a histogram with counts `c_i` and centres `x_i`, the threshold is the centre `x_k` that
//! maximises the between-class variance `w1(k) w2(k+1) (m1(k) - m2(k+1))^2`, where `w1(k)` is the
//! number of values in bins `0..=k`, `w2(k+1)` in bins `k+1..`, and `m1`, `m2` the class means.
//! Foreground is `value > threshold`.
//!
//! Matching scikit-image 0.26 to the bit: it converts the counts to float32 before the cumulative
//! sums, so the weights are float32 running sums; the products `c_i x_i`, their running sums and
//! the means are float32 for float32 images and float64 otherwise; ties go to the first maximum.
//! A constant image returns its value.
//!
//! Reference: N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans.
//! Syst. Man Cybern. 9 (1979) 62-66, doi:10.1109/TSMC.1979.4310076.

use num_traits::Float;

use crate::data::DType;
use crate::stats::histogram::Histogram;

/// Otsu's threshold of the histogrammed data (see the module documentation).
pub fn threshold(histogram: &Histogram) -> f64 {
    if histogram.min == histogram.max {
        // scikit-image returns the value of a constant image.
        return histogram.min;
    }
    let k = match histogram.dtype {
        DType::Float32 => best_split::<f32>(histogram),
        _ => best_split::<f64>(histogram),
    };
    histogram.centers[k]
}

/// Index of the first maximum of the between-class variance, products in precision `P`.
fn best_split<P: Float>(histogram: &Histogram) -> usize {
    let counts: Vec<f32> = histogram.counts.iter().map(|&c| c as f32).collect();
    let centers: Vec<P> = histogram
        .centers
        .iter()
        .map(|&x| P::from(x).expect("finite"))
        .collect();
    let n = counts.len();
    let cumsum = |values: &mut dyn Iterator<Item = P>| -> Vec<P> {
        values
            .scan(P::zero(), |acc, v| {
                *acc = *acc + v;
                Some(*acc)
            })
            .collect()
    };
    let weight1: Vec<f32> = counts
        .iter()
        .scan(0f32, |acc, &c| {
            *acc += c;
            Some(*acc)
        })
        .collect();
    let mut weight2: Vec<f32> = counts
        .iter()
        .rev()
        .scan(0f32, |acc, &c| {
            *acc += c;
            Some(*acc)
        })
        .collect();
    weight2.reverse();
    let product = |i: usize| P::from(counts[i]).expect("finite") * centers[i];
    let sum1 = cumsum(&mut (0..n).map(product));
    let mut sum2 = cumsum(&mut (0..n).rev().map(product));
    sum2.reverse();
    let mut best = (0, P::neg_infinity());
    for k in 0..n - 1 {
        let mean1 = sum1[k] / P::from(weight1[k]).expect("finite");
        let mean2 = sum2[k + 1] / P::from(weight2[k + 1]).expect("finite");
        let weights = P::from(weight1[k] * weight2[k + 1]).expect("finite");
        let variance = weights * (mean1 - mean2).powi(2);
        // Both weights are >= 1: the first bin holds the minimum and the last the maximum.
        if variance > best.1 {
            best = (k, variance);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(counts: &[u64], dtype: DType) -> Histogram {
        let occupied: Vec<f64> = (0..counts.len())
            .filter(|&i| counts[i] > 0)
            .map(|i| i as f64)
            .collect();
        Histogram {
            counts: counts.to_vec(),
            centers: (0..counts.len()).map(|i| i as f64).collect(),
            dtype,
            min: occupied[0],
            max: occupied[occupied.len() - 1],
        }
    }

    #[test]
    fn separates_two_clusters() {
        let t = threshold(&hist(&[5, 10, 5, 0, 0, 0, 4, 9, 4], DType::Uint8));
        assert!((2.0..6.0).contains(&t), "{t}");
    }

    #[test]
    fn constant_data_returns_its_value() {
        assert_eq!(threshold(&hist(&[7], DType::Uint8)), 0.0);
    }
}
