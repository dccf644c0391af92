"""The imagegen services, one package each. They import `shared`, never each other."""
