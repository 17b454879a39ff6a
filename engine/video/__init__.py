"""Video in: streamed decoding with clear errors (decode) and the on-disk cache of a clip's
detections (cache)."""
