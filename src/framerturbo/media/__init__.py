"""Media files: images in, videos/GIFs out, and exact seeking reads of videos."""
