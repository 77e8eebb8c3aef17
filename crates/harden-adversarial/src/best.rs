//! Per-sample bookkeeping of the best adversarial point an attack has visited.

use burn::tensor::{Bool, Tensor};

use crate::attack::per_sample;

/// The best point seen so far for each sample: a successful one before an unsuccessful one,
/// and among equally successful ones the one with the highest score (the objective the
/// attack maximises).
pub(crate) struct Best<const D: usize> {
    state: Option<(Tensor<D>, Tensor<1>, Tensor<1, Bool>)>,
}

impl<const D: usize> Best<D> {
    pub(crate) fn new() -> Self {
        Self { state: None }
    }

    /// Offers candidates `x` (`[N, ...]`) with per-sample `score` and `success` (`[N]`).
    pub(crate) fn offer(&mut self, x: Tensor<D>, score: Tensor<1>, success: Tensor<1, Bool>) {
        self.state = Some(match self.state.take() {
            None => (x, score, success),
            Some((bx, bs, bok)) => {
                let newly = success.clone().bool_and(bok.clone().bool_not());
                let same = success.clone().equal(bok.clone());
                let better = newly.bool_or(same.bool_and(score.clone().greater(bs.clone())));
                let better_x: Tensor<D, Bool> =
                    per_sample::<D, Bool>(better.clone()).expand(x.dims());
                (
                    bx.mask_where(better_x, x),
                    bs.mask_where(better.clone(), score),
                    bok.mask_where(better, success),
                )
            }
        });
    }

    /// The best points, their scores and successes; `None` when nothing was offered.
    pub(crate) fn into_inner(self) -> Option<(Tensor<D>, Tensor<1>, Tensor<1, Bool>)> {
        self.state
    }
}

/// Selects per sample between two tensors of shape `[N, ...]`: `a` where `mask` (`[N]`) is
/// set, `b` elsewhere.
pub(crate) fn select<const D: usize>(
    mask: Tensor<1, Bool>,
    a: Tensor<D>,
    b: Tensor<D>,
) -> Tensor<D> {
    let mask: Tensor<D, Bool> = per_sample::<D, Bool>(mask).expand(a.dims());
    b.mask_where(mask, a)
}
