"""The domain rules as plain typed functions over the record: cases, conferences, consent, selection, stages, reviews."""
