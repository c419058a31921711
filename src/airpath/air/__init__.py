"""Air quality: readings, validation, priors, street-level estimation and forecasting."""
