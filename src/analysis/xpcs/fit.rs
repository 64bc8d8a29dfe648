//! Weighted nonlinear least squares of the XPCS decay
//! `g2(tau) = baseline + beta exp(-2 (tau / tau_c)^alpha)` by Levenberg-Marquardt.
//!
//! Hand-written rather than the `levenberg-marquardt` crate: that crate brings nalgebra, a
//! long compile on the project's shared two-core builders, for a problem of at most four
//! parameters whose normal equations are a 4 x 4 solve. The algorithm is Marquardt's (1963,
//! doi:10.1137/0111030) with the damping `lambda diag(J^T J)`: it minimises
//! `chi2 = sum_i ((g2_i - f(tau_i)) / sigma_i)^2`, the objective of SciPy's
//! `curve_fit(..., sigma=sigma)`. At the minimum the covariance is `(J^T J)^-1` with `J` the
//! weighted Jacobian, i.e. `curve_fit(..., absolute_sigma=True)`: the weights are measured
//! standard errors, not relative ones. Steps that would make `tau_c` or `alpha` non-positive
//! are rejected like steps that raise chi2 (SciPy's peer bounds them at 0 instead; the minimum
//! found is interior, where the two agree).

/// Iterations before a fit is declared not converged.
const MAX_ITERATIONS: usize = 2000;
/// Converged when an accepted step changes no parameter by more than this, relatively.
const STEP_TOLERANCE: f64 = 1e-13;
/// Converged when the damping needed for any decrease of chi2 exceeds this: the minimum is
/// reached to rounding.
const MAX_DAMPING: f64 = 1e16;

/// The fitted decay of one ring.
#[derive(Debug, Clone, PartialEq)]
pub struct Decay {
    /// `baseline`, `beta`, `tau_c` (frames), `alpha`.
    pub params: [f64; 4],
    /// Standard errors of the four parameters from the covariance; 0 for a fixed `alpha`.
    pub sigma: [f64; 4],
    /// `chi2 / (lags - free parameters)` at the minimum (0 without degrees of freedom).
    pub chi2_reduced: f64,
    /// Levenberg-Marquardt iterations.
    pub iterations: usize,
}

/// The model `baseline + beta exp(-2 (tau / tau_c)^alpha)` of the parameters `p` (`baseline`,
/// `beta`, `tau_c`, `alpha`) at `tau`: the fitted decay, as the report draws it.
pub fn decay(p: &[f64; 4], tau: f64) -> f64 {
    model(p, tau).0
}

/// The model and its derivatives with respect to `baseline`, `beta`, `tau_c`, `alpha` at `tau`.
fn model(p: &[f64; 4], tau: f64) -> (f64, [f64; 4]) {
    let [baseline, beta, tau_c, alpha] = *p;
    let ratio = tau / tau_c;
    let u = ratio.powf(alpha);
    let e = (-2.0 * u).exp();
    let d_tau_c = beta * e * 2.0 * alpha * u / tau_c;
    let d_alpha = -2.0 * beta * e * u * ratio.ln();
    (baseline + beta * e, [1.0, e, d_tau_c, d_alpha])
}

/// Starting point: baseline 1 (the normalisation's limit), beta from the first lag,
/// `tau_c` twice the first lag where `g2 - 1` falls below `beta / e` (`exp(-2 tau / tau_c)`
/// is `1/e` at `tau = tau_c / 2`), else the geometric middle of the lags; `alpha` 1 or fixed.
fn start(tau: &[f64], g2: &[f64], alpha: Option<f64>) -> [f64; 4] {
    let beta = (g2[0] - 1.0).max(1e-3);
    let tau_c = tau
        .iter()
        .zip(g2)
        .find(|&(_, &g)| g - 1.0 <= beta / std::f64::consts::E)
        .map(|(&t, _)| 2.0 * t)
        .unwrap_or_else(|| (tau[0] * tau[tau.len() - 1]).sqrt());
    [1.0, beta, tau_c, alpha.unwrap_or(1.0)]
}

fn chi2(p: &[f64; 4], tau: &[f64], g2: &[f64], sigma: &[f64]) -> f64 {
    tau.iter()
        .zip(g2)
        .zip(sigma)
        .map(|((&t, &g), &s)| ((g - model(p, t).0) / s).powi(2))
        .sum()
}

/// `J^T J` and `J^T r` of the weighted residuals over the `free` parameters.
fn normal_equations(
    p: &[f64; 4],
    free: usize,
    tau: &[f64],
    g2: &[f64],
    sigma: &[f64],
) -> ([[f64; 4]; 4], [f64; 4]) {
    let mut a = [[0.0; 4]; 4];
    let mut b = [0.0; 4];
    for ((&t, &g), &s) in tau.iter().zip(g2).zip(sigma) {
        let (f, d) = model(p, t);
        let r = (g - f) / s;
        for i in 0..free {
            b[i] += d[i] / s * r;
            for j in 0..free {
                a[i][j] += d[i] / s * (d[j] / s);
            }
        }
    }
    (a, b)
}

/// The inverse of the leading `n x n` block of `a` (Gauss-Jordan, partial pivoting), `None`
/// when it is singular.
fn invert(a: &[[f64; 4]; 4], n: usize) -> Option<[[f64; 4]; 4]> {
    let mut m = *a;
    let mut inv = [[0.0; 4]; 4];
    for (i, row) in inv.iter_mut().enumerate().take(n) {
        row[i] = 1.0;
    }
    for c in 0..n {
        let pivot = (c..n).max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))?;
        if m[pivot][c] == 0.0 || !m[pivot][c].is_finite() {
            return None;
        }
        m.swap(c, pivot);
        inv.swap(c, pivot);
        let d = m[c][c];
        for j in 0..n {
            m[c][j] /= d;
            inv[c][j] /= d;
        }
        for r in 0..n {
            if r != c {
                let f = m[r][c];
                for j in 0..n {
                    m[r][j] -= f * m[c][j];
                    inv[r][j] -= f * inv[c][j];
                }
            }
        }
    }
    Some(inv)
}

/// Fits the decay to `g2` at lags `tau` (frames) with standard errors `sigma` (all > 0);
/// `alpha` fixed when given. Errors (one line) when the fit does not converge, is singular or
/// gives non-finite or non-positive `tau_c`.
pub fn fit_decay(
    tau: &[f64],
    g2: &[f64],
    sigma: &[f64],
    alpha: Option<f64>,
) -> Result<Decay, String> {
    let free = if alpha.is_some() { 3 } else { 4 };
    if tau.len() <= free {
        return Err(format!(
            "{} lags cannot determine {free} parameters",
            tau.len()
        ));
    }
    let mut p = start(tau, g2, alpha);
    let mut current = chi2(&p, tau, g2, sigma);
    let mut lambda = 1e-3;
    for iteration in 1..=MAX_ITERATIONS {
        let (a, b) = normal_equations(&p, free, tau, g2, sigma);
        let step = loop {
            let mut damped = a;
            for (i, row) in damped.iter_mut().enumerate().take(free) {
                row[i] += lambda * a[i][i];
            }
            let trial = invert(&damped, free).map(|inv| {
                let mut q = p;
                for i in 0..free {
                    q[i] += (0..free).map(|j| inv[i][j] * b[j]).sum::<f64>();
                }
                q
            });
            if let Some(q) = trial.filter(|q| q[2] > 0.0 && q[3] > 0.0) {
                let trial_chi2 = chi2(&q, tau, g2, sigma);
                if trial_chi2 <= current {
                    lambda = (lambda / 10.0).max(1e-12);
                    break Some((q, trial_chi2));
                }
            }
            lambda *= 10.0;
            if lambda > MAX_DAMPING {
                break None;
            }
        };
        let converged = match step {
            Some((q, trial_chi2)) => {
                let small = (0..free).all(|i| (q[i] - p[i]).abs() <= STEP_TOLERANCE * q[i].abs());
                p = q;
                current = trial_chi2;
                small
            }
            None => true,
        };
        if converged {
            return finish(p, free, tau, g2, sigma, current, iteration);
        }
    }
    Err(format!(
        "the fit did not converge in {MAX_ITERATIONS} iterations"
    ))
}

fn finish(
    p: [f64; 4],
    free: usize,
    tau: &[f64],
    g2: &[f64],
    sigma: &[f64],
    chi2: f64,
    iterations: usize,
) -> Result<Decay, String> {
    let (a, _) = normal_equations(&p, free, tau, g2, sigma);
    let covariance = invert(&a, free).ok_or("the fit's covariance is singular")?;
    let mut errors = [0.0; 4];
    for (i, e) in errors.iter_mut().enumerate().take(free) {
        *e = covariance[i][i].sqrt();
    }
    if p.iter().chain(&errors).any(|v| !v.is_finite()) || covariance[2][2] <= 0.0 {
        return Err(format!(
            "the fit gave non-finite values (beta {}, tau_c {}, alpha {})",
            p[1], p[2], p[3]
        ));
    }
    let dof = tau.len() - free;
    Ok(Decay {
        params: p,
        sigma: errors,
        chi2_reduced: chi2 / dof as f64,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(p: [f64; 4], tau: &[f64]) -> Vec<f64> {
        tau.iter().map(|&t| model(&p, t).0).collect()
    }

    #[test]
    fn recovers_exact_parameters_of_noiseless_data() {
        let tau: Vec<f64> = (1..=40).map(|k| 1.3f64.powi(k)).collect();
        let truth = [1.02, 0.3, 17.0, 1.4];
        let g2 = curve(truth, &tau);
        let sigma = vec![1e-3; tau.len()];
        let fit = fit_decay(&tau, &g2, &sigma, None).unwrap();
        for (got, want) in fit.params.iter().zip(truth) {
            assert!((got - want).abs() <= 1e-9 * want.abs(), "{got} vs {want}");
        }
        let fixed = fit_decay(&tau, &curve([1.0, 0.2, 5.0, 1.0], &tau), &sigma, Some(1.0)).unwrap();
        assert!((fixed.params[2] - 5.0).abs() < 1e-9);
        assert_eq!(fixed.sigma[3], 0.0);
    }

    #[test]
    fn a_flat_curve_gives_an_error_or_finite_values() {
        let tau: Vec<f64> = (1..=20).map(f64::from).collect();
        let g2 = vec![1.0; tau.len()];
        let sigma = vec![1e-3; tau.len()];
        match fit_decay(&tau, &g2, &sigma, None) {
            Ok(fit) => assert!(fit.params.iter().chain(&fit.sigma).all(|v| v.is_finite())),
            Err(e) => assert!(!e.contains('\n') && !e.is_empty()),
        }
    }
}
