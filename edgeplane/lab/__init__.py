"""``edgeplane lab ...``: bring parts up together on loopback so anyone can try them on one machine."""
