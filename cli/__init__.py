"""The `nxup` command line: commands, plain and JSON output, the demo runner.

It drives the engine, and imports the Textual app only when a terminal UI is asked for."""
