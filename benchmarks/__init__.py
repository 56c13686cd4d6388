"""Load generator and end-to-end benchmark of the help desk (`make bench`)."""
