"""Routes, one module per concern; each adds its endpoints to the app from `create_app`."""
