"""Small widgets the views are built from: banners, the drop zone, match cards, the batch table."""
