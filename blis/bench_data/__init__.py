"""Measured kernel tables: our on-disk format (`format`), importers of third-party layouts (`importers`) and
the MFU lookup with interpolation and coverage counters (`lookup`) used by roofline v2."""
