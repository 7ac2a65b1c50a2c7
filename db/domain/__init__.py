"""The domain: what the service stores and the rules it keeps; your code goes here."""
