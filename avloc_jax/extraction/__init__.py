"""Feature extraction from video files: decoding (PyAV), the I3D and VGGish networks in
Flax, their weight converters, and the snippet-grid alignment that writes the on-disk
format `avloc build-data` and `avloc predict` read."""
