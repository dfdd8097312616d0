"""igw Endpoint Picker (EPP): picks the model-server endpoint for each inference request."""
