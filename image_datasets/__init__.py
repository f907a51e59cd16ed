"""Users' image datasets for the image-classification evaluator: upload, bounded unpacking, checks, choice."""
