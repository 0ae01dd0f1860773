"""Training tools. :mod:`.blur` (synthetic camera shake) needs only numpy and scipy."""
