"""Gold: what people read. Member portraits, tags and audiences (`gold.people`); store,
product, campaign and inventory marts (`gold.marts`). Every table is published behind a gate."""
