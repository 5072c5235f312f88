"""Pure PKI functions: keys, names, profiles, signing and store encodings (no I/O)."""
