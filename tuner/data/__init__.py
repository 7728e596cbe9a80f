"""Reading data sets and turning rows into features (the first stage of the flow)."""
