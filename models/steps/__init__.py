"""The human steps a coordinator answers in the Prefect UI: one module each, with its form, choices, description and apply."""
