"""Inference on a Ray Serve cluster (docs/scale-out.md): the layer of app.inference, beside it.

- directory.py: the cluster's one detached actor, on the head node: it keeps each deployed
  model file (so workers need no shared disk) and what every replica last reported;
- replica.py: a net's Serve deployment, one ONNX Runtime session per replica, batched by Serve;
- deploy.py: `convatlas cluster deploy` and `convatlas cluster status`;
- backend.py: the web tier's `ray` inference backend (CONVATLAS_INFERENCE_BACKEND=ray).

Ray is the optional `cluster` extra: nothing here is imported unless the cluster is used.
"""
