"""Tool node: hosts one tool over HTTP, inside its own container (or process)."""
