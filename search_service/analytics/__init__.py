"""Search analytics: what readers searched and clicked, recorded without identifying them."""
