"""Request and response schemas, one module per resource; they validate input and generate /openapi.json."""
