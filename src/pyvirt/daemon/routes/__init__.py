"""The REST resources, one module per noun (each exports ``router``)."""
