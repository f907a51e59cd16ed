"""Search spaces: upload and validation of encodings and ``encoding_to_net`` modules, profiling, bundles."""
