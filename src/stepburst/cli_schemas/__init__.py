"""The JSON Schemas of the CLI's ``--json`` documents, one per command (README, "JSON output")."""
