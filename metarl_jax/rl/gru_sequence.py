"""RL²'s two recurrent networks unrolled over whole trials, arranged for speed.

The same numbers as stepping the flax modules of `nets.recurrent` (`recurrent.unroll`), with the
parameter tree unchanged, computed as:
- each GRU layer's gate kernels concatenated ([r, z, n]) once per call, outside any scan;
- a layer's input projections for all T steps in one matmul before its scan, for the policy and
  the value network together (the first layer reads the trial inputs, a deeper one the layer
  below, which is complete by then);
- inside the scan only the recurrent product, one batched matmul for both networks per step;
- the heads applied to the stacked hidden states after the last scan;
- a custom VJP whose backward scan carries only the hidden state's cotangent and emits the gate
  cotangents; the weight gradients are then matmuls over all T·N rows.

On a step where `valid` is 0 a layer keeps its state. Outputs on such steps are those of the kept
state, which `recurrent.unroll` leaves different (it masks the carry, not the output); they carry
zero weight in every loss.

GRU (flax's GRUCell): r = σ(x W_ir + b_ir + h W_hr), z = σ(x W_iz + b_iz + h W_hz),
n = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
"""

import functools

import jax
import jax.numpy as jnp

NETWORKS = ("policy", "value")
GATES = ("r", "z", "n")


def _cells(params) -> list[dict]:
    """Per GRU layer, both networks' cell parameters stacked on a leading axis of 2."""
    torsos = [params[net]["params"]["GRUTorso_0"] for net in NETWORKS]
    layers = []
    for index in range(len(torsos[0])):
        cells = [torso[f"GRUCell_{index}"] for torso in torsos]
        layers.append(
            {
                "input_kernel": jnp.stack(
                    [jnp.concatenate([c[f"i{g}"]["kernel"] for g in GATES], -1) for c in cells]
                ),
                "input_bias": jnp.stack(
                    [jnp.concatenate([c[f"i{g}"]["bias"] for g in GATES], -1) for c in cells]
                ),
                "hidden_kernel": jnp.stack(
                    [jnp.concatenate([c[f"h{g}"]["kernel"] for g in GATES], -1) for c in cells]
                ),
                "hidden_bias": jnp.stack([c["hn"]["bias"] for c in cells]),  # n gate only
            }
        )
    return layers


def _sigmoid(x):
    """σ through tanh: the same function, several times faster than XLA's logistic on CPUs."""
    return 0.5 * jnp.tanh(0.5 * x) + 0.5


def _gates(projected_inputs, hidden, hidden_kernel, hidden_bias):
    """One step for both networks: (new hidden, r, z, n, h W_hn + b_hn); shapes [2, N, H]."""
    hr, hz, hn = jnp.split(jnp.einsum("bnh,bhg->bng", hidden, hidden_kernel), 3, axis=-1)
    hn = hn + hidden_bias[:, None, :]
    xr, xz, xn = jnp.split(projected_inputs, 3, axis=-1)
    r = _sigmoid(xr + hr)
    z = _sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1.0 - z) * n + z * hidden, r, z, n, hn


def _scan_layer(projected, hidden_kernel, hidden_bias, valid, start, scan_unroll):
    """Hidden states [T, 2, N, H] from `start` [2, N, H], and the gates for the backward pass."""

    def step(hidden, x):
        projected_t, valid_t = x
        new, r, z, n, hn = _gates(projected_t, hidden, hidden_kernel, hidden_bias)
        hidden = jnp.where(valid_t[None, :, None] > 0, new, hidden)
        return hidden, (hidden, r, z, n, hn)

    return jax.lax.scan(step, start, (projected, valid), unroll=scan_unroll)[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def gru_layer(projected, hidden_kernel, hidden_bias, valid, start, scan_unroll=1):
    """Both networks' hidden states [T, 2, N, H] of one GRU layer, from `start` [2, N, H].

    projected: input projections x W_i + b_i [T, 2, N, 3H]; hidden_kernel [2, H, 3H];
    hidden_bias (b_hn) [2, H]; valid [T, N] (0: keep the state). No gradient flows into
    `start` (zero, or a state stored at collection for truncated BPTT).
    """
    return _scan_layer(projected, hidden_kernel, hidden_bias, valid, start, scan_unroll)[0]


def _gru_layer_forward(projected, hidden_kernel, hidden_bias, valid, start, scan_unroll):
    outputs = _scan_layer(projected, hidden_kernel, hidden_bias, valid, start, scan_unroll)
    return outputs[0], (*outputs, hidden_kernel, valid, start)


def _gru_layer_backward(scan_unroll, residuals, hidden_cotangent):
    hidden, r, z, n, hn, hidden_kernel, valid, start = residuals
    previous = jnp.concatenate([start[None], hidden[:-1]], axis=0)

    def step(carry, x):
        """Reverse time: the cotangent of h_{t-1} from that of h_t; the gate cotangents."""
        outer, previous_t, r_t, z_t, n_t, hn_t, valid_t = x
        total = outer + carry
        keep = valid_t[None, :, None] > 0
        new = jnp.where(keep, total, 0.0)
        d_n = new * (1.0 - z_t) * (1.0 - n_t**2)
        d_z = new * (previous_t - n_t) * z_t * (1.0 - z_t)
        d_r = d_n * hn_t * r_t * (1.0 - r_t)
        d_hidden_gates = jnp.concatenate([d_r, d_z, d_n * r_t], axis=-1)
        through_gates = new * z_t + jnp.einsum("bng,bhg->bnh", d_hidden_gates, hidden_kernel)
        d_previous = jnp.where(keep, through_gates, total)
        return d_previous, jnp.concatenate([d_r, d_z, d_n], axis=-1)

    _, d_projected = jax.lax.scan(
        step,
        jnp.zeros_like(hidden[0]),
        (hidden_cotangent, previous, r, z, n, hn, valid),
        reverse=True,
        unroll=scan_unroll,
    )
    width = hidden.shape[-1]
    d_hidden_gates = d_projected.at[..., 2 * width :].multiply(r)
    d_hidden_kernel = jnp.einsum("tbnh,tbng->bhg", previous, d_hidden_gates)
    d_hidden_bias = jnp.sum(d_hidden_gates[..., 2 * width :], axis=(0, 2))
    return (
        d_projected,
        d_hidden_kernel,
        d_hidden_bias,
        jnp.zeros_like(valid),
        jnp.zeros_like(start),
    )


gru_layer.defvjp(_gru_layer_forward, _gru_layer_backward)


def fused_unroll(params, inputs, valid, gaussian: bool, scan_unroll: int = 1, carry=None):
    """(distribution parameters, values) along trials [T, N, ...] from the zero state, or from
    `carry` = (policy layers, value layers) of [N, H] (no gradient flows into it).

    params: the agent's {"policy", "value"} flax parameters; inputs [T, N, I]; valid [T, N].
    """
    valid = valid.astype(inputs.dtype)
    layer_inputs = jnp.broadcast_to(inputs[:, None], (inputs.shape[0], 2, *inputs.shape[1:]))
    for index, cell in enumerate(_cells(params)):
        width = cell["hidden_bias"].shape[-1]
        if carry is None:
            start = jnp.zeros((2, inputs.shape[1], width), inputs.dtype)
        else:
            start = jax.lax.stop_gradient(jnp.stack([carry[0][index], carry[1][index]]))
        projected = (
            jnp.einsum("tbni,big->tbng", layer_inputs, cell["input_kernel"])
            + cell["input_bias"][None, :, None, :]
        )
        layer_inputs = gru_layer(
            projected, cell["hidden_kernel"], cell["hidden_bias"], valid, start, scan_unroll
        )
    policy_features, value_features = layer_inputs[:, 0], layer_inputs[:, 1]
    policy_head = params["policy"]["params"]["Dense_0"]
    value_head = params["value"]["params"]["Dense_0"]
    head = policy_features @ policy_head["kernel"] + policy_head["bias"]
    values = (value_features @ value_head["kernel"] + value_head["bias"])[..., 0]
    if gaussian:
        log_std = params["policy"]["params"]["log_std"]
        return (head, jnp.broadcast_to(log_std, head.shape)), values
    return head, values
