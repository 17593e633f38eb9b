"""MACAW's weight-transform MLP as pure functions over an explicit parameter dict.

Layer l (in → out) owns a latent vector z_l and a transform {kernel [L, in*out + out], bias}:
theta_l = z_l @ kernel + bias is split into W_l [in, out] and b_l [out], and the layer computes
x @ W_l + b_l. Only the latents adapt in MACAW's inner loop; `split_adapted` and `merge` separate
them from the transforms, which only the outer loop trains.

Initialisation: each latent is a random unit vector, the transform columns that generate W are
N(0, 1/in), and those that generate b, and the transform bias, are 0. Given z, every entry of W is
then N(0, |z|^2 / in) = N(0, 1/in) (a LeCun-normal dense init) and b = 0. The macaw repository draws
z ~ N(0, 1/out^2) and keeps torch's default nn.Linear init for the transform, so there W's scale is
set by the transform bias, about U(-0.1, 0.1), whatever the layer's width.

Advantage head: MACAW makes it a weight-transform network too; use `init_wt_mlp(key, (features +
actions, 1))` (one layer) or with a hidden layer, as the macaw repository does with (..., 32, 1).
`init_dense_head` is the plain alternative; having no latents, it is not adapted in the inner loop.
"""

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp


def init_wt_layer(key: jax.Array, in_size: int, out_size: int, latent_size: int):
    """(latent [L], transform {"kernel": [L, in*out + out], "bias": [in*out + out]})."""
    latent_key, kernel_key = jax.random.split(key)
    latent = jax.random.normal(latent_key, (latent_size,))
    latent = latent / jnp.linalg.norm(latent)
    weight_columns = jax.random.normal(kernel_key, (latent_size, in_size * out_size))
    kernel = jnp.concatenate(
        [weight_columns / jnp.sqrt(in_size), jnp.zeros((latent_size, out_size))], axis=1
    )
    return latent, {"kernel": kernel, "bias": jnp.zeros(in_size * out_size + out_size)}


def init_wt_mlp(key: jax.Array, sizes: Sequence[int], latent_size: int = 100) -> dict:
    """Parameters of a weight-transform MLP with layer sizes (in, hidden..., out)."""
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output size, got {sizes}")
    keys = jax.random.split(key, len(sizes) - 1)
    layers = [
        init_wt_layer(k, n_in, n_out, latent_size)
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]
    return {"latents": [z for z, _ in layers], "transforms": [t for _, t in layers]}


def wt_layer_weights(transform: Mapping, latent: jax.Array, in_size: int):
    """The weight matrix [in, out] and bias [out] that `transform` generates from `latent`."""
    theta = latent @ transform["kernel"] + transform["bias"]
    out_size = theta.shape[-1] // (in_size + 1)
    if out_size * (in_size + 1) != theta.shape[-1]:
        raise ValueError(f"a transform of {theta.shape[-1]} outputs does not fit in_size {in_size}")
    split = in_size * out_size
    return theta[:split].reshape(in_size, out_size), theta[split:]


def wt_mlp_apply(
    params: dict,
    x: jax.Array,
    activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
    return_features: bool = False,
):
    """Output [..., out]; with `return_features`, (output, last hidden layer's output).

    The activation follows every layer but the last. A one-layer network's features are its input.
    """
    num_layers = len(params["latents"])
    for index, (latent, transform) in enumerate(
        zip(params["latents"], params["transforms"], strict=True)
    ):
        weight, bias = wt_layer_weights(transform, latent, x.shape[-1])
        y = x @ weight + bias
        if index == num_layers - 1:
            return (y, x) if return_features else y
        x = activation(y)


def init_dense_head(key: jax.Array, in_size: int, out_size: int) -> dict:
    """A dense layer with a LeCun-normal kernel and a zero bias."""
    kernel = jax.random.normal(key, (in_size, out_size)) / jnp.sqrt(in_size)
    return {"kernel": kernel, "bias": jnp.zeros(out_size)}


def dense_head_apply(params: dict, x: jax.Array) -> jax.Array:
    return x @ params["kernel"] + params["bias"]


def split_adapted(params: Mapping) -> tuple[dict, dict]:
    """(adapted, fixed): every "latents" entry, at any depth of nested dicts, and the rest."""
    adapted, fixed = {}, {}
    for name, value in params.items():
        if name == "latents":
            adapted[name] = value
        elif isinstance(value, Mapping):
            sub_adapted, fixed[name] = split_adapted(value)
            if sub_adapted:
                adapted[name] = sub_adapted
        else:
            fixed[name] = value
    return adapted, fixed


def merge(adapted: Mapping, fixed: Mapping) -> dict:
    """The inverse of `split_adapted`."""
    params = dict(fixed)
    for name, value in adapted.items():
        params[name] = value if name == "latents" else merge(value, fixed.get(name, {}))
    return params
