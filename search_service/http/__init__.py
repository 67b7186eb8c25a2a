"""The HTTP layer: the app factory, its routes, request and response models, errors and pages."""
