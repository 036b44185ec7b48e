"""Store, product, bundle, campaign and inventory marts."""
