"""Stages of the PKI build: each module yields doit task dicts for one stage."""
