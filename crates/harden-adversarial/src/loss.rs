//! Per-sample losses and predictions for multi-class (K logits) and binary (one logit) heads.

use burn::tensor::activation::{log_sigmoid, log_softmax, softmax};
use burn::tensor::{Bool, Int, Tensor};

/// Whether logits `[N, K]` are a single binary logit (`K = 1`).
pub fn is_binary(logits: &Tensor<2>) -> bool {
    logits.dims()[1] == 1
}

/// Per-sample cross-entropy, or binary cross-entropy with logits when `K = 1`
/// (labels then are 0 or 1).
///
/// # Shapes
///
/// - `logits`: `[N, K]`; `labels`: `[N]` class indices.
/// - output: `[N]`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, k] = logits.dims();
    if k == 1 {
        let z: Tensor<1> = logits.reshape([n]);
        let y = labels.float();
        // BCE with logits: -y log s(z) - (1 - y) log s(-z).
        let pos = log_sigmoid(z.clone());
        let neg = log_sigmoid(z.neg());
        (pos * y.clone() + neg * (y.neg().add_scalar(1.0))).neg()
    } else {
        let log_p = log_softmax(logits, 1);
        let one_hot = labels.one_hot::<2>(k).float();
        (log_p * one_hot).sum_dim(1).reshape([n]).neg()
    }
}

/// Per-sample `KL(p || q)` between the predictive distributions of two logit batches
/// (softmax over `K` classes, or Bernoulli for `K = 1`).
///
/// # Shapes
///
/// - `p_logits`, `q_logits`: `[N, K]`.
/// - output: `[N]`.
pub fn kl_divergence(p_logits: Tensor<2>, q_logits: Tensor<2>) -> Tensor<1> {
    let [n, k] = p_logits.dims();
    if k == 1 {
        let (zp, zq): (Tensor<1>, Tensor<1>) = (p_logits.reshape([n]), q_logits.reshape([n]));
        let (log_p1, log_p0) = (log_sigmoid(zp.clone()), log_sigmoid(zp.neg()));
        let (log_q1, log_q0) = (log_sigmoid(zq.clone()), log_sigmoid(zq.neg()));
        let (p1, p0) = (log_p1.clone().exp(), log_p0.clone().exp());
        p1 * (log_p1 - log_q1) + p0 * (log_p0 - log_q0)
    } else {
        let log_p = log_softmax(p_logits.clone(), 1);
        let log_q = log_softmax(q_logits, 1);
        (softmax(p_logits, 1) * (log_p - log_q))
            .sum_dim(1)
            .reshape([n])
    }
}

/// Predicted class per sample (`argmax`, or `logit > 0` for one logit).
///
/// # Shapes
///
/// - `logits`: `[N, K]`; output: `[N]`.
pub fn predictions(logits: Tensor<2>) -> Tensor<1, Int> {
    let [n, k] = logits.dims();
    if k == 1 {
        logits.reshape([n]).greater_elem(0.0).int()
    } else {
        logits.argmax(1).reshape([n])
    }
}

/// Whether each sample is classified as `labels`.
///
/// # Shapes
///
/// - `logits`: `[N, K]`; `labels`: `[N]`; output: `[N]`.
pub fn correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Bool> {
    predictions(logits).equal(labels)
}

/// Margin of the true class over the best other class, `z_y - max_{i != y} z_i`: positive
/// when the sample is classified correctly. For one binary logit, the logit signed by the
/// label (`z` for class 1, `-z` for class 0).
///
/// # Shapes
///
/// - `logits`: `[N, K]`; `labels`: `[N]`; output: `[N]`.
pub fn margin(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, k] = logits.dims();
    if k == 1 {
        let z: Tensor<1> = logits.reshape([n]);
        return z * labels.float().mul_scalar(2.0).sub_scalar(1.0);
    }
    let z_y: Tensor<1> = logits
        .clone()
        .gather(1, labels.clone().reshape([n, 1]))
        .reshape([n]);
    let others = logits.mask_fill(labels.one_hot::<2>(k).bool(), f32::NEG_INFINITY);
    z_y - others.max_dim(1).reshape([n])
}
