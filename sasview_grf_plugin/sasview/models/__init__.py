"""sasmodels model files. Each is also a valid stand-alone sasmodels plugin file."""
