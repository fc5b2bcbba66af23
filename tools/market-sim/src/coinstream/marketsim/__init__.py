"""Local market simulator speaking each data source's real wire protocol."""
