"""The only modules that touch the outside world: the filesystem layout and Docker."""
