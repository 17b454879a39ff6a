"""The image-alignment stage, after clean-up: the final fit that puts the body's landmarks on the
detections (image_fit), the front/back evidence of the face (facing) and the reprojection figure
every Motion carries (reprojection)."""
