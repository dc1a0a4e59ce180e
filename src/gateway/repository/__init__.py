"""The model repository: config files, scanning the tree, the registry of loaded versions."""
