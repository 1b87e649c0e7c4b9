"""DKIM test keys and the DNS records that publish them."""
