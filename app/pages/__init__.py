"""Server-rendered htmx pages, one blueprint per area with its templates beside it (none yet)."""
