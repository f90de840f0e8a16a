"""HTTP: the FastAPI app, the JSON API, the action-link pages."""
