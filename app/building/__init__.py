"""Building the model repository: the top layer that calls the torch side (app/nets: build,
export) and the runtime side (app/inference: the parity check) in one process."""
