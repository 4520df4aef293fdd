"""The bundled demo model: procedural training data, scoring helpers and the checkpoint folder."""
