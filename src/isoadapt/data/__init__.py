"""Data sources, one module each, all writing the processed format defined in `formats`."""
