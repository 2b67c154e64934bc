"""Exit codes of every `nxup` command: 0 when everything asked for was done, 1 when something
failed (each failure named on stderr or in the JSON), 2 for a usage error (click's own)."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
