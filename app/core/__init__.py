"""Pure arithmetic over specs: shapes, parameters, MACs, receptive fields, lecture verdicts."""
