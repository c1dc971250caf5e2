"""A storage node: accounts, containers and objects on the node's local devices."""
