"""The fine-tuning objective of the heads, beside the ETE's own (``ete.model``): class-weighted
cross-entropy, each window scored by the head of its own dataset."""

from __future__ import annotations

import jax.numpy as jnp
import optax


def heads_loss(logits: dict, heads, label_B, dataset_B, class_weights_DxC):
    """Mean class-weighted cross-entropy of a mixed batch.

    Parameters
    ----------
    logits : ``{head: [B, classes]}``: every head scores every window of the batch.
    heads : the head names in dataset order (window ``b`` belongs to ``heads[dataset_B[b]]``).
    label_B, dataset_B : each window's class and dataset index.
    class_weights_DxC : per dataset and class, the weight of a window of that class (1 when the loss
        is not class-balanced); padded with zeros past a dataset's classes.

    Returns
    -------
    The weighted sum of each window's cross-entropy under its own head, divided by the sum of the
    batch's weights, so that a batch's loss does not depend on which datasets it drew.
    """
    total = 0.0
    for d, name in enumerate(heads):
        lg = logits[name]
        ce = optax.softmax_cross_entropy_with_integer_labels(lg, jnp.clip(label_B, 0, lg.shape[1] - 1))
        total = total + jnp.sum(ce * (dataset_B == d) * class_weights_DxC[d][label_B])
    return total / jnp.maximum(jnp.sum(class_weights_DxC[dataset_B, label_B]), 1e-6)
