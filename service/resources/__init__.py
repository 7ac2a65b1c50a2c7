"""HTTP resources, one module per URL family."""
